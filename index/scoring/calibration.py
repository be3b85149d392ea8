"""Calibrated species confidence: temperature scaling of prototype-cosine logits.

The raw prototype cosine (e.g. 0.985) is a similarity, not a probability. Here
``p = softmax(cosines / T)`` with one temperature ``T`` fitted on validation
crops by minimising the negative log-likelihood (Guo et al., 2017, "On
Calibration of Modern Neural Networks"), and the fit is judged by the expected
calibration error (ECE, equal-width confidence bins).

This is the species confidence only. Whether a crop is *unknown* is a separate
decision (:mod:`index.scoring.ood`: a scorer's score against its calibrated threshold).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from index.errors import InvalidInput


def log_softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
    """``scipy.special.log_softmax`` in numpy (the serving install has no scipy on its query path)."""
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
    """``scipy.special.softmax`` in numpy."""
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


#: Search range of the temperature (cosine logits lie in [-1, 1], so useful T are small).
T_BOUNDS = (1e-3, 10.0)
ECE_BINS = 15


def _check(logits: np.ndarray, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 2 or not np.isfinite(z).all():
        raise InvalidInput(f"logits must be a finite (n>0, C>=2) array, got shape {z.shape}")
    if labels is None:
        return z, None
    y = np.asarray(labels)
    if y.shape != (z.shape[0],) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= z.shape[1]:
        raise InvalidInput(f"labels must be (n,) ints in [0, {z.shape[1]}), one per logit row")
    return z, y.astype(np.int64)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z, y = _check(logits, labels)
    return float(-log_softmax(z / temperature, axis=1)[np.arange(len(y)), y].mean())


def calibrated_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """(n, C) logits -> (n, C) probabilities ``softmax(logits / temperature)``."""
    if not temperature > 0:
        raise InvalidInput(f"temperature must be > 0, got {temperature}")
    z, _ = _check(logits)
    return softmax(z / temperature, axis=1)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the top-1 confidence: sum over equal-width bins of |bin|/n * |accuracy - mean confidence|.

    Bin b holds confidences in ``(b/bins, (b+1)/bins]`` (the first bin also holds 0).

    Args:
        probabilities: (n, C) rows summing to 1; labels: (n,) int true classes.
    """
    p, y = _check(probabilities, labels)
    if bins < 1:
        raise InvalidInput("bins must be >= 1")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in np.unique(which):
        in_bin = which == b
        ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and how well it calibrates (on the crops it was fitted to, and optionally a test set)."""

    temperature: float  # p = softmax(cosine / temperature)
    nll_before: float  # validation NLL at temperature 1 (raw cosines as logits)
    nll_after: float  # validation NLL at the fitted temperature
    ece_val: float  # ECE on validation after scaling
    n_val: int
    ece_test: float | None = None  # ECE on a held-out test set after scaling
    ece_test_uncalibrated: float | None = None  # same test set, temperature 1
    n_test: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """(n, C) prototype cosines -> (n, C) calibrated species probabilities."""
        return calibrated_probabilities(logits, self.temperature)

    def evaluated(self, logits: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> Calibration:
        """A copy with ECE on a test set (``logits`` (n, C) cosines, ``labels`` (n,) ints) filled in."""
        _, y = _check(logits, labels)
        return Calibration(
            self.temperature,
            self.nll_before,
            self.nll_after,
            self.ece_val,
            self.n_val,
            ece_test=expected_calibration_error(self.probabilities(logits), y, bins),
            ece_test_uncalibrated=expected_calibration_error(calibrated_probabilities(logits, 1.0), y, bins),
            n_test=int(len(y)),
        )


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> Calibration:
    """Temperature minimising validation NLL (scipy bounded scalar search over log T).

    Args:
        logits: (n, C) prototype cosines of validation crops; labels: (n,) int true classes.
    Raises:
        InvalidInput: bad shapes, non-finite logits, labels out of range.
    """
    from scipy.optimize import minimize_scalar  # fitting only: loading a stored temperature skips it

    z, y = _check(logits, labels)
    rows = np.arange(len(y))

    def objective(log_t: float) -> float:
        return float(-log_softmax(z / np.exp(log_t), axis=1)[rows, y].mean())

    found = minimize_scalar(objective, bounds=tuple(np.log(T_BOUNDS)), method="bounded", options={"xatol": 1e-6})
    t = float(np.exp(found.x))
    return Calibration(
        temperature=t,
        nll_before=objective(0.0),
        nll_after=float(found.fun),
        ece_val=expected_calibration_error(calibrated_probabilities(z, t), y, bins),
        n_val=int(len(y)),
    )
