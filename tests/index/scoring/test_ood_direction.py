"""Every OOD scorer points the same way: higher = more known, and a far-away vector is unknown.

The embeddings of a trained encoder leave most directions without training variance (the demo's:
1280-d, 922 crops); the toy below does too. Wrong
code that fails here: relative Mahalanobis with the background covariance shrunk apart from the
class one (it ranked a far-away vector as the most known of all: AUROC 0.02 on the demo), any
scorer returning a distance (higher = farther) instead of minus it, a threshold compared the
wrong way round in ``is_unknown``.
"""

from __future__ import annotations

import numpy as np
import pytest

from index.scoring.ood import SCORERS, calibrate, is_unknown, make_scorer
from index.scoring.prototypes import Prototypes

DIM, PER_CLASS = 10, 26


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def space():
    """Two classes laid out as a trained encoder lays them out: their means differ in two
    directions, their crops vary in two others, and the remaining five directions carry no
    training variance at all (the demo's 1280-d space has more directions than crops)."""
    rng = np.random.default_rng(62)
    centres = np.zeros((2, DIM))
    centres[:, 0] = 1.0
    centres[:, 1:3] = 1.9 * rng.standard_normal((2, 2))

    def draw(per: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(np.arange(2), per)
        noise = np.zeros((labels.size, DIM))
        noise[:, 8:] = 0.02 * rng.standard_normal((labels.size, 2))
        return unit(centres[labels] + noise), labels.astype(str)

    train, labels = draw(PER_CLASS)
    val, _ = draw(5)
    far = np.zeros((5, DIM))
    far[np.arange(5), np.arange(3, 8)] = 1.0  # the directions no training crop uses (cosine 0 to all)
    return train, labels, val, unit(far)


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_far_away_vector_ranks_below_known_and_is_unknown(name, space):
    train, labels, val, far = space
    scorer = make_scorer(name).fit(train, labels, Prototypes.fit(train, labels))
    known, away = scorer.score(val), scorer.score(far)
    assert away.max() < known.min(), f"{name}: a far-away vector scores {away.max():.4g} >= known {known.min():.4g}"
    threshold = calibrate(known)
    assert is_unknown(away, threshold).all()
    assert (~is_unknown(known, threshold)).mean() >= 0.95
