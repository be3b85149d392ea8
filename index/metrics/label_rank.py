"""Answers graded at the rank of their label: an answer inside the label's subtree is right.

A data set with labels at mixed ranks ("Copepod" beside the copepod genera Calanus, Oithona, ...)
treats a crop labelled "Copepod" and answered "Calanus" as an error under strict top-1, although
the answer is right and more specific than the label. Here:

- **subtree** (:func:`subtree_matrix`): class ``j`` is inside class ``i``'s subtree when ``j == i``, or
  when ``i``'s lineage names at least one taxon and every ``(rank, taxon)`` of it is also in ``j``'s
  lineage, which names more (``j`` is strictly more specific). Lineages, not parent pointers, decide:
  a label such as "Copepod" whose lineage ends at class Copepoda holds every copepod genus, although
  no genus's parent chain passes through the concept "Copepod".
- **an ancestor of the label is not right**: answering "Copepod" for a crop labelled "Calanus" is
  less specific than the label, so it is counted apart (``ancestor``), never as correct. A sibling
  ("Oithona" for "Calanus") is a real error.
- a class with no lineage (``Blob``, ``Snow``) holds only itself.

``confusion_kinds`` splits every answer into exact / inside the subtree (more specific) / an
ancestor (less specific) / a real error, so a confusion summary shows the subtree answers apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.errors import InvalidInput
from index.taxonomy import Lineage

KINDS = ("exact", "subtree", "ancestor", "error")


def subtree_matrix(classes: Sequence[str], tree: Mapping[str, Lineage]) -> np.ndarray:
    """``(C, C)`` bool: ``[i, j]`` is True when class ``j`` is inside class ``i``'s subtree (rule above).

    ``tree``: concept -> lineage (``index.taxonomy.lineages``); a class it lacks holds only itself.
    """
    named = [frozenset(tree[c].ranks) if c in tree else frozenset() for c in classes]
    out = np.eye(len(classes), dtype=bool)
    for i, above in enumerate(named):
        if not above:
            continue
        for j, below in enumerate(named):
            if above < below:  # a strict subset: j agrees with every named rank of i and names more
                out[i, j] = True
    return out


def subtrees(classes: Sequence[str], tree: Mapping[str, Lineage]) -> dict[str, list[str]]:
    """class -> the classes strictly inside its subtree (only classes that hold some), for training."""
    m = subtree_matrix(classes, tree)
    out = {}
    for i, c in enumerate(classes):
        below = [classes[j] for j in np.flatnonzero(m[i]) if j != i]
        if below:
            out[str(c)] = below
    return out


def answer_kinds(y_true: np.ndarray, y_pred: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``(n,)`` int8 index into :data:`KINDS` of each answer.

    Args:
        y_true, y_pred: (n,) int, column indices of the label and of the answer.
        members: (C, C) bool from :func:`subtree_matrix`.
    """
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape or members.ndim != 2 or members.shape[0] != members.shape[1]:
        raise InvalidInput(f"need (n,) labels and answers and a (C, C) matrix, got {t.shape}, {p.shape}")
    kinds = np.full(t.shape, KINDS.index("error"), dtype=np.int8)
    kinds[members[p, t] & (p != t)] = KINDS.index("ancestor")  # the label is inside the answer's subtree
    kinds[members[t, p] & (p != t)] = KINDS.index("subtree")
    kinds[p == t] = KINDS.index("exact")
    return kinds


def top1_at_label_rank(y_true: np.ndarray, y_pred: np.ndarray, members: np.ndarray) -> float:
    """Fraction of answers that are the label or inside its subtree (NaN for no answers)."""
    kinds = answer_kinds(y_true, y_pred, members)
    if kinds.size == 0:
        return float("nan")
    return float(np.isin(kinds, (KINDS.index("exact"), KINDS.index("subtree"))).mean())


@dataclass(frozen=True)
class LabelRankReport:
    """Top-1 strictly and at the label's rank, and where the answers went per labelled class."""

    top1_strict: float
    top1_at_label_rank: float
    kinds: dict[str, int]  # exact / subtree / ancestor / error -> answers
    per_class: dict[str, dict[str, int]]  # label -> kind -> answers (classes with test crops)
    subtree_answers: dict[str, dict[str, int]]  # label -> the more specific answers given -> how many
    holders: tuple[str, ...]  # the classes whose subtree holds other classes

    def to_dict(self) -> dict[str, Any]:
        return {
            "top1_strict": self.top1_strict,
            "top1_at_label_rank": self.top1_at_label_rank,
            "kinds": dict(self.kinds),
            "per_class": {k: dict(v) for k, v in self.per_class.items()},
            "subtree_answers": {k: dict(v) for k, v in self.subtree_answers.items()},
            "holders": list(self.holders),
        }


def label_rank_report(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str], members: np.ndarray
) -> LabelRankReport:
    """The :class:`LabelRankReport` of answers ``y_pred`` to labels ``y_true`` (column indices into ``classes``)."""
    classes = [str(c) for c in classes]
    if members.shape != (len(classes), len(classes)):
        raise InvalidInput(f"membership matrix must be ({len(classes)}, {len(classes)}), got {members.shape}")
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    kinds = answer_kinds(t, p, members)
    per_class: dict[str, dict[str, int]] = {}
    nested: dict[str, dict[str, int]] = {}
    for c in np.unique(t):
        rows = t == c
        per_class[classes[c]] = {k: int((kinds[rows] == i).sum()) for i, k in enumerate(KINDS)}
        inside = rows & (kinds == KINDS.index("subtree"))
        if inside.any():
            answers, counts = np.unique(p[inside], return_counts=True)
            nested[classes[c]] = {classes[a]: int(n) for a, n in zip(answers, counts, strict=True)}
    n = max(1, t.size)
    return LabelRankReport(
        top1_strict=float((kinds == KINDS.index("exact")).sum() / n) if t.size else float("nan"),
        top1_at_label_rank=top1_at_label_rank(t, p, members),
        kinds={k: int((kinds == i).sum()) for i, k in enumerate(KINDS)},
        per_class=per_class,
        subtree_answers=nested,
        holders=tuple(classes[i] for i in range(len(classes)) if members[i].sum() > 1),
    )
