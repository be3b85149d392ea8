"""Out-of-distribution scorers and threshold calibration.

Every scorer's ``score`` returns (m,) float64 where HIGHER means MORE
in-distribution (more like the training classes). A crop is called unknown
when its score falls below a threshold calibrated on known validation crops
(:func:`calibrate`: by default 95% of them are accepted).

Scorers (``SCORERS``, a plain name -> class dict):

- ``prototype``: max cosine to the class prototypes.
- ``knn``: cosine to the k-th nearest training vector (faiss flat IP, k=5).
- ``mahalanobis``: minus the smallest Mahalanobis distance to a class mean,
  with one shared covariance shrunk by Ledoit-Wolf (Lee et al., 2018).
- ``msp``: maximum softmax probability over prototype cosines times a
  temperature (Hendrycks & Gimpel, 2017), the field's baseline.
- ``relative_mahalanobis``: minus the smallest *relative* squared Mahalanobis
  distance, ``MD_k(z) - MD_0(z)``, where ``MD_0`` is the distance to one
  Gaussian fitted to all training vectors (Ren et al., 2021, "A Simple Fix to
  Mahalanobis Distance for Improving Near-OOD Detection"). The background
  covariance is the shrunk within-class covariance plus the between-class
  scatter (the law of total covariance), so it is never narrower than the
  class one in any direction and a vector far from the training data scores
  low; shrinking the two covariances apart made it the other way round.

The default scorer is :data:`DEFAULT_SCORER` (measured: bench/RESULTS.md). The scorers live in
:mod:`index.scoring.ood_scorers` (prototype, msp, knn) and :mod:`index.scoring.mahalanobis`; this
module is their registry and the threshold rule, and re-exports them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from index.errors import InvalidInput
from index.scoring.mahalanobis import MahalanobisScorer, RelativeMahalanobisScorer
from index.scoring.ood_scorers import KnnScorer, Labels, MspScorer, PrototypeScorer, Scorer

__all__ = ["SCORERS", "DEFAULT_SCORER", "TPR_TARGET", "make_scorer", "calibrate", "is_unknown", "Labels", "Scorer"]
__all__ += ["KnnScorer", "MahalanobisScorer", "MspScorer", "PrototypeScorer", "RelativeMahalanobisScorer"]


SCORERS: dict[str, type] = {
    "prototype": PrototypeScorer,
    "knn": KnnScorer,
    "mahalanobis": MahalanobisScorer,
    "msp": MspScorer,
    "relative_mahalanobis": RelativeMahalanobisScorer,
}

#: The decision scorer used when the catalog has no held-out species to choose one
#: on (bench/RESULTS.md, "OOD scorers"); TPR_TARGET: share of known validation
#: crops the calibrated threshold accepts.
DEFAULT_SCORER = "knn"
TPR_TARGET = 0.95


def make_scorer(name: str, **kwargs: Any) -> Scorer:
    """Instantiate scorer ``name`` with its keyword options.

    Raises:
        InvalidInput: unknown name (lists the valid ones) or bad options.
    """
    if name not in SCORERS:
        raise InvalidInput(f"unknown OOD scorer {name!r}; valid: {', '.join(SCORERS)}")
    try:
        return SCORERS[name](**kwargs)
    except TypeError as exc:
        raise InvalidInput(f"bad options for OOD scorer {name!r}: {exc}") from exc


def calibrate(scores_on_known_val: np.ndarray, tpr: float = 0.95) -> float:
    """Threshold accepting at least ``tpr`` of the known validation scores.

    Returns the largest observed score t with mean(scores >= t) >= tpr.

    Raises:
        InvalidInput: empty or non-finite scores, or tpr outside (0, 1].
    """
    scores = np.sort(np.asarray(scores_on_known_val, dtype=np.float64).ravel())
    if scores.size == 0 or not np.isfinite(scores).all():
        raise InvalidInput("calibration needs at least one finite score")
    if not 0.0 < tpr <= 1.0:
        raise InvalidInput(f"tpr must be in (0, 1], got {tpr}")
    j = int(np.floor(scores.size * (1.0 - tpr) + 1e-9))
    return float(scores[min(j, scores.size - 1)])


def is_unknown(score: float | np.ndarray, threshold: float) -> bool | np.ndarray:
    """True where ``score`` is below ``threshold`` (the crop is out of distribution)."""
    result = np.asarray(score) < threshold
    return bool(result) if result.ndim == 0 else result
