"""Relative Mahalanobis (Ren et al. 2021) against an independent oracle (sklearn + scipy)."""

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis
from sklearn.covariance import LedoitWolf

from index.errors import EmptyIndex
from index.scoring.ood import SCORERS, make_scorer


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 6)) * 2
    labels = np.repeat(["a", "b", "c"], 40)
    train = _unit(centres[np.repeat(np.arange(3), 40)] + rng.normal(size=(120, 6)) * 0.5)
    queries = _unit(rng.normal(size=(10, 6)))
    return train, labels, queries


def test_relative_mahalanobis_matches_oracle(data):
    train, labels, queries = data
    x = train.astype(np.float64)
    means = {c: x[labels == c].mean(0) for c in "abc"}
    within = LedoitWolf(assume_centered=True).fit(x - np.stack([means[c] for c in labels]))
    mean0 = x.mean(0)  # the background: all training vectors, covariance = shrunk within + between
    between = sum((labels == c).sum() * np.outer(means[c] - mean0, means[c] - mean0) for c in "abc") / len(x)
    precision0 = np.linalg.inv(within.covariance_ + between)
    expected = []
    for q in queries.astype(np.float64):
        md0 = mahalanobis(q, mean0, precision0) ** 2
        expected.append(-min(mahalanobis(q, means[c], within.precision_) ** 2 - md0 for c in "abc"))
    got = make_scorer("relative_mahalanobis").fit(train, labels).score(queries)
    # wrong code caught: no background term, sqrt instead of squared distances, the class
    # covariance reused for the background, the background shrunk on its own (the inverted
    # scorer of issue 30), or max instead of min over classes
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


def test_relative_differs_from_plain_mahalanobis_ranking(data):
    train, labels, queries = data
    rel = make_scorer("relative_mahalanobis").fit(train, labels).score(queries)
    plain = make_scorer("mahalanobis").fit(train, labels).score(queries)
    assert not np.allclose(rel, -(plain**2))  # the background term is really subtracted


def test_registered_and_unfitted_raises(data):
    assert "relative_mahalanobis" in SCORERS
    with pytest.raises(EmptyIndex):
        make_scorer("relative_mahalanobis").score(data[2])
