"""Two vector spaces, one similarity: SimpleShot centring and a weighted concatenation (issue 26).

A model has two spaces: the *tuned* one (the fine-tuned encoder, which knows the trained species)
and a *general* one (a frozen ImageNet encoder, which keeps what separates species it never saw).
:class:`Fusion` centres each on its own training mean and re-normalises (SimpleShot's "CL2N",
Wang et al. 2019), then concatenates them as ``[sqrt(w) t, sqrt(1 - w) g]``: a unit vector whose
cosine to another fused vector is ``w cos_t + (1 - w) cos_g``. The weight and both means are a
stored decision (fitted at ``index build``, read at load); measured in bench/two_spaces.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.errors import InvalidInput

#: the naming space's names: where a crop is named / searched
SPACES = ("tuned", "general", "fused")


def centred(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``x: (n, d)`` -> ``(n, d) float32``: ``x - mean`` re-normalised (a zero row stays zero)."""
    z = np.asarray(x, np.float32) - np.asarray(mean, np.float32)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return np.divide(z, norms, out=np.zeros_like(z), where=norms > 0)


@dataclass(frozen=True, eq=False)
class Fusion:
    """How the tuned and the general space are fused (see the module docstring)."""

    weight: float  # share of the tuned space's cosine in the fused cosine, in [0, 1]
    tuned_mean: np.ndarray  # (d_t,) float32: mean of the tuned training vectors
    general_mean: np.ndarray  # (d_g,) float32: mean of the general training vectors

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise InvalidInput(f"fusion weight must be in [0, 1], got {self.weight}")

    @classmethod
    def fit(cls, tuned: np.ndarray, general: np.ndarray, weight: float) -> Fusion:
        """Means of ``tuned: (n, d_t)`` and ``general: (n, d_g)``, the same n training crops."""
        tuned, general = np.asarray(tuned, np.float32), np.asarray(general, np.float32)
        if len(tuned) == 0 or len(tuned) != len(general):
            raise InvalidInput(
                f"fusion needs the same training crops in both spaces, got {len(tuned)} and {len(general)}"
            )
        return cls(float(weight), tuned.mean(0), general.mean(0))

    def fuse(self, tuned: np.ndarray, general: np.ndarray) -> np.ndarray:
        """``tuned: (n, d_t)``, ``general: (n, d_g)`` (row i the same crop) -> ``(n, d_t + d_g) float32`` unit.

        Raises:
            InvalidInput: row counts or widths that do not fit.
        """
        tuned, general = np.atleast_2d(tuned), np.atleast_2d(general)
        if len(tuned) != len(general):
            raise InvalidInput(f"{len(tuned)} tuned and {len(general)} general vectors: one per crop in each")
        if tuned.shape[1] != self.tuned_mean.size or general.shape[1] != self.general_mean.size:
            raise InvalidInput(
                f"vectors of width {tuned.shape[1]} / {general.shape[1]}, the fusion was fitted "
                f"on {self.tuned_mean.size} / {self.general_mean.size}"
            )
        w = self.weight
        out = np.concatenate(
            [np.sqrt(w) * centred(tuned, self.tuned_mean), np.sqrt(1.0 - w) * centred(general, self.general_mean)],
            axis=1,
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    @property
    def dim(self) -> int:
        return int(self.tuned_mean.size + self.general_mean.size)

    def to_dict(self) -> dict:
        return {
            "weight": self.weight,
            "tuned_mean": self.tuned_mean.tolist(),
            "general_mean": self.general_mean.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Fusion:
        return cls(
            float(d["weight"]), np.asarray(d["tuned_mean"], np.float32), np.asarray(d["general_mean"], np.float32)
        )


#: how "unknown" is decided with two spaces: ``tuned`` (the tuned space's stored decision, as with one
#: space); ``two-stage`` (the tuned space's trained-species decision accepts; a crop it rejects is named
#: only when the naming space names an added species and the general space's few-shot scorer accepts it)
UNKNOWN_RULES = ("tuned", "two-stage")


@dataclass(frozen=True, eq=False)
class SpacesDecision:
    """Which space names, which decides "unknown", and the fusion: decided at ``index build``, read at load."""

    model_id: str  # the tuned space's model id
    general_id: str  # the general space's model id (its own vectors, prototypes and generations)
    naming: str  # one of SPACES: where a crop is named
    unknown: str  # one of UNKNOWN_RULES
    fusion: Fusion
    digest: str  # of both spaces' trained prototypes when decided (a retrain or re-embed decides again)

    def __post_init__(self) -> None:
        if self.naming not in SPACES:
            raise InvalidInput(f"unknown space {self.naming!r}; valid: {', '.join(SPACES)}")
        if self.unknown not in UNKNOWN_RULES:
            raise InvalidInput(f"unknown rule {self.unknown!r}; valid: {', '.join(UNKNOWN_RULES)}")

    def to_dict(self) -> dict:
        return {
            "model_id": self.model_id,
            "general_id": self.general_id,
            "naming": self.naming,
            "unknown": self.unknown,
            "fusion": self.fusion.to_dict(),
            "digest": self.digest,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SpacesDecision:
        return cls(
            d["model_id"], d["general_id"], d["naming"], d["unknown"], Fusion.from_dict(d["fusion"]), d["digest"]
        )
