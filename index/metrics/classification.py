"""Evaluation metrics: classification, OOD detection, retrieval (numpy + scikit-learn).

Retrieval follows Musgrave et al., "A Metric Learning Reality Check" (2020):
each embedding queries all the others (itself excluded); queries whose label
no other embedding shares are left out, as pytorch-metric-learning does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
    top_k_accuracy_score,
)

from index.errors import InvalidInput


@dataclass(frozen=True)
class ClassificationReport:
    """Top-k accuracies, per-class and averaged precision/recall/F1, confusion matrix."""

    top1: float
    top5: float | None  # None when there are 5 classes or fewer (every answer would be in the top 5)
    classes: tuple[str, ...]
    precision: tuple[float, ...]  # per class, in ``classes`` order
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    macro: dict[str, float]  # precision, recall, f1
    weighted: dict[str, float]
    confusion: tuple[tuple[int, ...], ...]  # rows = true class, cols = predicted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OodReport:
    """OOD detection quality of one scorer (known = positive class)."""

    auroc: float
    fpr_at_95_tpr: float
    aupr_in: float  # average precision with known crops as positives
    aupr_out: float  # average precision with unknown crops as positives
    known_accuracy: float  # known crops accepted at the threshold
    unknown_accuracy: float  # unknown crops rejected at the threshold
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def top_k_accuracy(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Fraction of rows whose true column index is among the ``k`` highest scores (scikit-learn).

    Args:
        y_true: (n,) int, column index of the true class.
        scores: (n, C) float, higher = more likely.

    ``k >= C`` is trivially 1.0; ``k = 1`` is the accuracy of the argmax (scikit-learn's
    top-k treats two columns as a binary problem with a probability threshold).
    """
    n_classes = scores.shape[1]
    if k >= n_classes:
        return 1.0
    if k == 1:
        return float(accuracy_score(y_true, np.argmax(scores, axis=1)))
    return float(top_k_accuracy_score(y_true, scores, k=k, labels=np.arange(n_classes)))


def classification_metrics(
    y_true: Sequence[str] | np.ndarray, scores: np.ndarray, classes: Sequence[str]
) -> ClassificationReport:
    """Classification quality from per-class scores.

    Args:
        y_true: (n,) true class names, each one of ``classes``.
        scores: (n, C) float similarity per class (e.g. ``Prototypes.similarities``).
        classes: (C,) class names, the columns of ``scores``.

    ``top5`` is None (not applicable) when there are 5 classes or fewer.

    Raises:
        InvalidInput: shape mismatch, no rows, or a true label not in ``classes``.
    """
    classes = tuple(str(c) for c in classes)
    y = np.asarray([str(v) for v in y_true])
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape != (y.size, len(classes)) or y.size == 0:
        raise InvalidInput(f"scores must be (n, C) = ({y.size}, {len(classes)}), got {scores.shape}")
    lookup = {c: i for i, c in enumerate(classes)}
    missing = sorted(set(y.tolist()) - lookup.keys())
    if missing:
        raise InvalidInput(f"true labels not among the classes: {', '.join(missing[:5])}")
    y_idx = np.array([lookup[v] for v in y])
    pred = np.argmax(scores, axis=1)
    labels = np.arange(len(classes))
    p, r, f, s = precision_recall_fscore_support(y_idx, pred, labels=labels, zero_division=0)
    averaged = {}
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y_idx, pred, labels=labels, average=avg, zero_division=0)
        averaged[avg] = {"precision": float(ap), "recall": float(ar), "f1": float(af)}
    cm = confusion_matrix(y_idx, pred, labels=labels)
    return ClassificationReport(
        top1=top_k_accuracy(y_idx, scores, 1),
        top5=top_k_accuracy(y_idx, scores, 5) if len(classes) > 5 else None,
        classes=classes,
        precision=tuple(map(float, p)),
        recall=tuple(map(float, r)),
        f1=tuple(map(float, f)),
        support=tuple(map(int, s)),
        macro=averaged["macro"],
        weighted=averaged["weighted"],
        confusion=tuple(tuple(map(int, row)) for row in cm),
    )


def ood_metrics(scores_known: np.ndarray, scores_unknown: np.ndarray, threshold: float) -> OodReport:
    """OOD quality for scores where higher = more in-distribution.

    Args:
        scores_known: (a,) scores of known-class (in-distribution) test crops.
        scores_unknown: (b,) scores of unknown-class crops.
        threshold: calibrated threshold (``ood.calibrate``); below = unknown.

    Raises:
        InvalidInput: either set is empty.
    """
    known = np.asarray(scores_known, dtype=np.float64).ravel()
    unknown = np.asarray(scores_unknown, dtype=np.float64).ravel()
    if known.size == 0 or unknown.size == 0:
        raise InvalidInput("OOD metrics need both known and unknown scores")
    y = np.r_[np.ones(known.size), np.zeros(unknown.size)]
    s = np.r_[known, unknown]
    fpr, tpr, _ = roc_curve(y, s)
    return OodReport(
        auroc=float(roc_auc_score(y, s)),
        fpr_at_95_tpr=float(fpr[np.searchsorted(tpr, 0.95, side="left")]),
        aupr_in=float(average_precision_score(y, s)),
        aupr_out=float(average_precision_score(1 - y, -s)),
        known_accuracy=float((known >= threshold).mean()),
        unknown_accuracy=float((unknown < threshold).mean()),
        threshold=float(threshold),
    )


def _neighbour_hits(embeddings: np.ndarray, codes: np.ndarray, k: int, chunk: int = 512):
    """Yield (rows, hits): hits[i, j] is True when row i's (j+1)-th nearest other
    embedding shares its label; (len(rows), k) bool, best neighbour first."""
    n = embeddings.shape[0]
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    for start in range(0, n, chunk):
        sims = x[start : start + chunk] @ x.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # exclude self
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        nbr = codes[np.take_along_axis(part, order, axis=1)]
        yield start + rows, nbr == codes[start + rows, None]


@dataclass(frozen=True)
class RetrievalReport:
    """Leave-one-out retrieval quality (:func:`retrieval_metrics`)."""

    recall: dict[int, float]  # k -> recall@k
    map_at_r: float
    queries: int  # non-singleton queries used

    def to_dict(self) -> dict[str, Any]:
        return {**{f"recall@{k}": v for k, v in self.recall.items()}, "map@r": self.map_at_r, "queries": self.queries}


def retrieval_metrics(
    embeddings: np.ndarray, labels: Sequence[Any] | np.ndarray, ks: Sequence[int] = (1, 5, 10)
) -> RetrievalReport:
    """Recall@k and MAP@R of leave-one-out retrieval by cosine similarity.

    Recall@k: fraction of queries with at least one of their k nearest
    neighbours (self excluded) sharing their label. MAP@R: for a query whose
    label has R other members, the sum of precision@i over the ranks i <= R
    that hold a same-label neighbour, divided by R (Musgrave et al., 2020).

    Args:
        embeddings: (n, d) float, L2-normalised.
        labels: (n,) class labels.

    Returns:
        a :class:`RetrievalReport`: ``recall`` keyed by each k of ``ks``, ``map_at_r``, and
        ``queries`` (the non-singleton queries used).

    Raises:
        InvalidInput: shape mismatch or no label with two members.
    """
    emb = np.asarray(embeddings)
    _, codes, counts = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
    if emb.ndim != 2 or emb.shape[0] != codes.size:
        raise InvalidInput(f"need (n, d) embeddings with n labels, got {emb.shape} and {codes.size}")
    r_all = counts[codes] - 1  # same-label neighbours each query can find
    if not (r_all > 0).any():
        raise InvalidInput("retrieval metrics need at least one label with two or more members")
    k_max = min(max(max(ks), int(r_all.max())), emb.shape[0] - 1)
    ranks = np.arange(1, k_max + 1)
    found = {k: 0 for k in ks}
    ap_sum = 0.0
    for rows, hit in _neighbour_hits(emb, codes, k_max):
        keep = r_all[rows] > 0
        hit, r = hit[keep], r_all[rows][keep]
        for k in ks:
            found[k] += int(hit[:, :k].any(axis=1).sum())
        precision_at_i = np.cumsum(hit, axis=1) / ranks[None, :]
        within = ranks[None, :] <= r[:, None]
        ap_sum += float(((precision_at_i * (hit & within)).sum(axis=1) / r).sum())
    q = int((r_all > 0).sum())
    return RetrievalReport({int(k): found[k] / q for k in ks}, ap_sum / q, q)
