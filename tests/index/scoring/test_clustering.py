"""HDBSCAN over unit vectors (index/scoring/clustering.py): recovers groups, deterministic, exemplars exact."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from index.errors import InvalidInput
from index.scoring.clustering import NOISE, ClusterParams, cluster_vectors

pytest.importorskip("sklearn")
from sklearn.metrics import adjusted_rand_score  # noqa: E402


def blobs(sizes=(40, 30, 20), dim=16, spread=0.15, outliers=10, seed=0):
    """Unit vectors around ``len(sizes)`` random directions, plus scattered outliers (label -1)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    rows, labels = [], []
    for c, n in enumerate(sizes):
        rows.append(centres[c] / np.linalg.norm(centres[c]) + spread * rng.normal(size=(n, dim)) / np.sqrt(dim))
        labels += [c] * n
    rows.append(rng.normal(size=(outliers, dim)))
    labels += [-1] * outliers
    x = np.concatenate(rows).astype(np.float32)
    order = rng.permutation(len(x))
    x, y = x[order], np.asarray(labels)[order]
    return x / np.linalg.norm(x, axis=1, keepdims=True), y


def test_recovers_the_groups_where_random_labels_cannot():
    x, y = blobs()
    got = cluster_vectors(x, ClusterParams(min_cluster_size=5))
    inside = y >= 0
    assert got.count == 3
    assert adjusted_rand_score(y[inside], got.labels[inside]) > 0.95
    rng = np.random.default_rng(1)
    assert adjusted_rand_score(y[inside], rng.permutation(got.labels[inside])) < 0.1  # what random labels reach
    # scattered crops stay unclustered far more often than the groups' own members
    assert (got.labels[~inside] == NOISE).mean() >= 0.3 > 0.1 >= (got.labels[inside] == NOISE).mean()


def test_clusters_are_numbered_by_size_and_rerun_identically():
    x, _ = blobs(sizes=(15, 40, 25))
    a, b = cluster_vectors(x, ClusterParams(min_cluster_size=5)), cluster_vectors(x, ClusterParams(min_cluster_size=5))
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centres, b.centres)
    sizes = [int((a.labels == c).sum()) for c in range(a.count)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] >= 35


def test_centres_distances_cohesion_and_exemplars_match_a_brute_force_oracle():
    x, _ = blobs()
    got = cluster_vectors(x, ClusterParams(min_cluster_size=5, exemplars=4))
    for c in range(got.count):
        rows = np.flatnonzero(got.labels == c)
        mean = x[rows].astype(np.float64).mean(0)
        centre = mean / np.linalg.norm(mean)
        cos = x[rows] @ centre
        np.testing.assert_allclose(got.centres[c], centre, atol=1e-6)
        np.testing.assert_allclose(got.distances[rows], 1 - cos, atol=1e-5)
        assert got.cohesion[c] == pytest.approx(cos.mean(), abs=1e-5)
        assert set(got.exemplars[c].tolist()) == set(rows[np.argsort(-cos)[:4]].tolist())
        members = got.members(c)
        assert np.all(np.diff(got.distances[members]) >= 0)
    assert np.isnan(got.distances[got.labels == NOISE]).all()


def test_fewer_rows_than_a_cluster_is_no_cluster():
    x, _ = blobs(sizes=(3,), outliers=0)
    got = cluster_vectors(x, ClusterParams(min_cluster_size=5))
    assert got.count == 0 and (got.labels == NOISE).all()
    assert cluster_vectors(np.zeros((0, 8), np.float32)).count == 0


def test_projection_keeps_the_groups():
    x, y = blobs(dim=64)
    got = cluster_vectors(x, ClusterParams(min_cluster_size=5, dims=8))
    inside = y >= 0
    assert adjusted_rand_score(y[inside], got.labels[inside]) > 0.9


@pytest.mark.parametrize(
    "bad", [{"min_cluster_size": 1}, {"selection": "best"}, {"exemplars": 0}, {"dims": -1}, {"min_samples": 0}]
)
def test_bad_parameters_are_refused(bad):
    with pytest.raises(InvalidInput):
        ClusterParams(**bad)


def test_params_round_trip():
    p = ClusterParams(min_cluster_size=7, selection="leaf", dims=16)
    assert ClusterParams.from_dict(p.to_dict()) == p


def test_without_scikit_learn_one_line_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)  # import fails as in the lean install
    with pytest.raises(InvalidInput, match=r"oceanid\[train\]"):
        cluster_vectors(blobs()[0])


def test_exemplars_come_from_distinct_groups_first():
    x, _ = blobs(sizes=(30, 30), outliers=0)
    plain = cluster_vectors(x, ClusterParams(min_cluster_size=5, exemplars=3))
    nearest = plain.exemplars[0]
    groups = np.arange(len(x)).astype(object)
    groups[nearest] = "one track"  # the three nearest the centre are frames of one track
    got = cluster_vectors(x, ClusterParams(min_cluster_size=5, exemplars=3), groups)
    assert got.exemplars[0][0] == nearest[0] and len({groups[r] for r in got.exemplars[0]}) == 3
    members = got.members(0)
    rest = [r for r in members if groups[r] != "one track"]
    assert got.exemplars[0][1:].tolist() == rest[:2]  # then the nearest of other groups
