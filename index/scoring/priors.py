"""Class priors as a decision: a logit adjustment of the calibrated species scores.

Prototypes are equal-prior: the nearest prototype answers as if every species were equally
common, which over-predicts rare species where some are far more frequent than others (plankton).
Logit adjustment (Menon et al. 2021, "Long-tail learning via logit adjustment") moves a
classifier between priors after training: with calibrated logits ``z_c = cosine_c / T``,

    answer = argmax_c  z_c + tau * log(pi_c)

adds the prior ``pi`` with strength ``tau`` (the paper's post-hoc form *subtracts* ``tau log pi``
to remove a training prior from a classifier trained on natural frequencies; here the scores start
equal-prior, so the natural prior is added). ``tau = 0`` or ``balanced`` priors are the equal-prior
answer of old. The probabilities become ``p'_c ∝ p_c * pi_c ** tau``.

Where ``pi`` comes from (``source``): ``train`` (the training crops' class frequencies), ``balanced``
(equal), or ``file`` (a user's target, ``class,weight`` CSV; weights need not sum to one).
A species added later (``species add``) has no training crops: it gets ``added_weight``, the median
of the trained species' weights, fixed when the priors were decided (a file may name it instead).
So adding or removing a species never changes a trained species' prior.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import InvalidInput, SourceError

SOURCES = ("train", "balanced", "file")
#: Default strength, chosen by the rule fixed before the figures (bench/plankton.py): the tau in {0, 0.5, 0.75, 1}
#: with the highest mean validation F1-macro over plankton folds 0 and 1 and fish4knowledge: 0.5 (0.642 against
#: 0.627 at tau 0, 0.617 at 0.75, 0.598 at 1; bench/RESULTS.md "Plankton on both folds"). Used when a new decision
#: is stored (``index build``); a home whose stored decision has no priors keeps answering without them.
DEFAULT_TAU = 0.5


@dataclass(frozen=True)
class ClassPriors:
    """Per-class prior weights and the strength ``tau`` they are applied with."""

    source: str  # train | balanced | file
    tau: float
    weights: dict[str, float] = field(default_factory=dict)  # class -> weight, normalised to sum 1 over trained
    added_weight: float = 0.0  # the weight of a class the table lacks (a species added later)
    file: str | None = None  # the CSV a ``file`` prior came from

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "tau": self.tau,
            "weights": dict(self.weights),
            "added_weight": self.added_weight,
            "file": self.file,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClassPriors:
        return cls(
            str(d["source"]),
            float(d["tau"]),
            {str(k): float(v) for k, v in d.get("weights", {}).items()},
            float(d.get("added_weight", 0.0)),
            d.get("file"),
        )

    @property
    def active(self) -> bool:
        """Whether the adjustment changes anything (tau > 0 and weights that differ)."""
        return self.tau > 0 and len(set(self.weights.values())) > 1

    def log_bias(self, names: Sequence[str]) -> np.ndarray:
        """``(C,) float64``: ``tau * log(pi_c)`` for the classes ``names`` (the added rule for those
        the table lacks); zeros when the adjustment is off."""
        if not self.active:
            return np.zeros(len(names))
        w = np.asarray([self.weights.get(str(n), self.added_weight) for n in names], dtype=np.float64)
        return self.tau * np.log(np.maximum(w, 1e-12))

    def adjust(self, probabilities: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """``(n, C)`` calibrated probabilities over ``names`` -> the prior-adjusted ones (rows sum to 1)."""
        p = np.asarray(probabilities, dtype=np.float64)
        if not self.active:
            return p
        if p.ndim != 2 or p.shape[1] != len(names):
            raise InvalidInput(f"probabilities must be (n, {len(names)}), got {p.shape}")
        logp = np.log(np.maximum(p, 1e-300)) + self.log_bias(names)[None, :]
        logp -= logp.max(axis=1, keepdims=True)
        e = np.exp(logp)
        return e / e.sum(axis=1, keepdims=True)


def _normalised(weights: Mapping[str, float], classes: Sequence[str]) -> dict[str, float]:
    total = float(sum(weights[c] for c in classes))
    return {str(k): float(v) / total for k, v in weights.items()}


def fit_priors(
    labels: Sequence[str] | np.ndarray,
    classes: Sequence[str],
    source: str = "train",
    tau: float = DEFAULT_TAU,
    target: Mapping[str, float] | None = None,
    file: str | None = None,
) -> ClassPriors:
    """The priors of ``classes`` (the trained species).

    Args:
        labels: (n,) the training crops' labels (``source == "train"``: their frequencies).
        target: class -> weight (``source == "file"``); must name every class of ``classes``.

    Raises:
        InvalidInput: an unknown source, tau < 0, a class without training crops or missing from
            ``target``, a weight <= 0.
    """
    if source not in SOURCES:
        raise InvalidInput(f"unknown priors {source!r}; valid: {', '.join(SOURCES)} (or a CSV file)")
    if not tau >= 0:
        raise InvalidInput(f"prior strength tau must be >= 0, got {tau}")
    classes = [str(c) for c in classes]
    if source == "balanced":
        weights = {c: 1.0 for c in classes}
    elif source == "train":
        names, counts = np.unique(np.asarray([str(x) for x in labels]), return_counts=True)
        found = dict(zip(names.tolist(), counts.tolist(), strict=True))
        missing = [c for c in classes if not found.get(c)]
        if missing:
            raise InvalidInput(f"no training crops for {', '.join(missing[:5])}: cannot fit their priors")
        weights = {c: float(found[c]) for c in classes}
    else:
        target = dict(target or {})
        missing = [c for c in classes if c not in target]
        if missing:
            raise InvalidInput(
                f"the priors file names no weight for {', '.join(missing[:5])}", hint="give every known species a row"
            )
        weights = {str(k): float(v) for k, v in target.items()}
    if any(not v > 0 for v in weights.values()):
        raise InvalidInput("prior weights must be > 0")
    weights = _normalised(weights, classes)
    added = float(np.median([weights[c] for c in classes])) if classes else 0.0
    return ClassPriors(source, float(tau), weights, added, file)


def read_priors_csv(path: Path) -> dict[str, float]:
    """``class,weight`` rows (a header row is skipped when its weight is not a number).

    Raises:
        SourceError: unreadable file, a row without two fields, a weight that is not a number.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(x.strip() for x in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"{path}: cannot read the priors CSV ({exc})") from None
    out: dict[str, float] = {}
    for n, row in enumerate(rows):
        if len(row) < 2:
            raise SourceError(f"{path}: row {n + 1} needs two fields: class,weight")
        try:
            out[row[0].strip()] = float(row[1])
        except ValueError:
            if n == 0:
                continue  # a header
            raise SourceError(f"{path}: row {n + 1}: weight {row[1]!r} is not a number") from None
    if not out:
        raise SourceError(f"{path}: no class,weight rows")
    return out


@dataclass(frozen=True)
class PriorsRequest:
    """What ``index build --priors/--prior-tau`` asks for; a field left None keeps the stored choice
    (or, with none stored, the default: training frequencies at :data:`DEFAULT_TAU`)."""

    source: str | None = None  # train | balanced | file
    tau: float | None = None
    target: dict[str, float] | None = None  # class -> weight, for ``file``
    file: str | None = None

    def resolve(
        self, labels: Sequence[str] | np.ndarray, classes: Sequence[str], stored: ClassPriors | None
    ) -> ClassPriors:
        """The priors to store for ``classes`` given the training ``labels`` and the ``stored`` ones.
        Raises InvalidInput (see :func:`fit_priors`)."""
        source = self.source or (stored.source if stored is not None else "train")
        tau = self.tau if self.tau is not None else (stored.tau if stored is not None else DEFAULT_TAU)
        target, file = self.target, self.file
        if source == "file" and target is None and stored is not None and stored.source == "file":
            target, file = stored.weights, stored.file
        if source == "file" and target is None:
            raise InvalidInput("file priors need a class,weight CSV", hint="oceanid index build --priors PRIORS.csv")
        return fit_priors(labels, classes, source, tau, target, file)


def adjusted_logits(
    similarities: np.ndarray, names: Sequence[str], temperature: float | None, priors: ClassPriors | None
) -> np.ndarray:
    """``(n, C)`` prototype cosines -> ``cosine / T + tau * log(pi)`` (``T`` 1 when None; no priors:
    the scaled cosines). Its row argmax is the answer; its softmax the adjusted probabilities."""
    z = np.asarray(similarities, dtype=np.float64) / (temperature or 1.0)
    return z + priors.log_bias(names)[None, :] if priors is not None else z
