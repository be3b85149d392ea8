"""Prototypes and OOD scorers: hand-computed 2-D cases and independent oracles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis
from sklearn.metrics import roc_auc_score

from index.errors import EmptyIndex, InvalidInput, NotFound
from index.scoring.ood import SCORERS, MahalanobisScorer, calibrate, is_unknown, make_scorer
from index.scoring.prototypes import Prototypes, class_centres


def at(*degrees: float) -> np.ndarray:
    """Unit 2-D vectors at the given angles, (n, 2) float32."""
    r = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# ---- prototypes ------------------------------------------------------------------


def test_mean_prototype_is_renormalised_mean():
    protos = Prototypes.fit(at(0, 90, 180), ["a", "a", "b"])
    assert protos.names == ("a", "b")
    np.testing.assert_allclose(protos.vectors, at(45, 180), atol=1e-6)
    np.testing.assert_allclose(protos.similarities(at(0)), [[np.cos(np.pi / 4), -1.0]], atol=1e-6)


def test_sub_centres_take_max_over_a_class():
    vectors = at(-2, 0, 2, 88, 90, 92, 180)
    labels = ["a"] * 6 + ["b"]
    protos = Prototypes.fit(vectors, labels, n_centres=2, seed=0)
    assert protos.owners.tolist() == [0, 0, 1]
    np.testing.assert_allclose(
        sorted(np.rad2deg(np.arctan2(protos.vectors[:2, 1], protos.vectors[:2, 0]))), [0, 90], atol=1e-4
    )
    np.testing.assert_allclose(protos.similarities(at(90, 0)), [[1.0, 0.0], [1.0, -1.0]], atol=1e-5)


def test_similarities_match_loop_oracle():
    rng = np.random.default_rng(0)
    x = unit(rng.standard_normal((120, 8)))
    labels = rng.choice(["p", "q", "r", "s"], 120)
    protos = Prototypes.fit(x, labels, n_centres=3, seed=1)
    q = unit(rng.standard_normal((9, 8)))
    oracle = np.array([[max(float(p @ row) for p in protos.rows_of(name)) for name in protos.names] for row in q])
    np.testing.assert_allclose(protos.similarities(q), oracle, atol=1e-6)


def test_k_capped_by_distinct_vectors_and_deterministic():
    assert class_centres(at(0, 10), n_centres=5).shape == (2, 2)
    assert class_centres(at(0, 0, 0), n_centres=3).shape == (1, 2)
    rng = np.random.default_rng(3)
    x = unit(rng.standard_normal((50, 4)))
    np.testing.assert_array_equal(class_centres(x, 4, seed=7), class_centres(x, 4, seed=7))


def test_topk_names_and_scores_best_first():
    protos = Prototypes.fit(at(0, 60, 120), ["a", "b", "c"])
    top = protos.topk(at(50), k=2)
    assert [name for name, _ in top[0]] == ["b", "a"]
    np.testing.assert_allclose([s for _, s in top[0]], [np.cos(np.deg2rad(10)), np.cos(np.deg2rad(50))], atol=1e-6)
    assert len(protos.topk(at(50), k=10)[0]) == 3


def test_few_shot_add_replace_and_remove():
    protos = Prototypes.fit(at(0, 5, 90, 95), ["a", "a", "b", "b"])
    added = protos.with_class("new", at(178, 180, 182))
    assert added.names == ("a", "b", "new")
    assert added.topk(at(179), 1)[0][0][0] == "new"
    assert protos.names == ("a", "b")  # the original is unchanged
    with pytest.raises(InvalidInput, match="already"):
        added.with_class("new", at(0))
    replaced = added.with_class("new", at(270), replace=True)
    np.testing.assert_allclose(replaced.rows_of("new"), at(270), atol=1e-6)
    removed = added.without_class("a")
    assert removed.names == ("b", "new") and removed.owners.tolist() == [0, 1]
    assert removed.topk(at(2), 1)[0][0][0] == "b"
    with pytest.raises(NotFound):
        removed.without_class("a")


def test_class_similarities_and_confusable_with_known_angles():
    """Classes at 0, 10 and 80 degrees, 'a' with a second row at 75: its closest to 'c' is 5 degrees."""
    vectors = np.concatenate([at(0, 75), at(10), at(80)])
    protos = Prototypes(("a", "b", "c"), vectors, np.array([0, 0, 1, 2]))
    sims = protos.class_similarities()
    np.testing.assert_allclose(sims[0, 1:], np.cos(np.radians([10, 5])), rtol=1e-6)
    assert np.isneginf(np.diag(sims)).all() and np.allclose(sims, sims.T)
    assert protos.confusable_with("a", 2) == [
        ("c", pytest.approx(np.cos(np.radians(5)))),
        ("b", pytest.approx(np.cos(np.radians(10)))),
    ]
    assert [(a, b) for a, b, _ in protos.confusable_pairs()] == [("a", "c"), ("a", "b"), ("b", "c")]


@pytest.mark.parametrize(
    ("names", "vectors", "owners"),
    [
        (("a", "a"), at(0, 1), [0, 1]),
        (("a", "b"), at(0, 1), [1, 0]),
        (("a", "b"), at(0, 1), [0, 0]),
        (("a",), at(0, 1) * 2, [0, 0]),
    ],
    ids=["duplicate_names", "unsorted_owners", "class_without_rows", "not_normalised"],
)
def test_invalid_prototypes_rejected(names, vectors, owners):
    with pytest.raises(InvalidInput):
        Prototypes(names, vectors, np.asarray(owners))


# ---- OOD scorers -----------------------------------------------------------------


def test_prototype_scorer_hand_case():
    protos = Prototypes.fit(at(0, 90), ["a", "b"])
    scorer = make_scorer("prototype").fit(at(0, 90), ["a", "b"], protos)
    np.testing.assert_allclose(scorer.score(at(45, 180, 90)), [np.cos(np.pi / 4), 0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize(("k", "expected_deg"), [(1, 0), (2, 10), (5, 40)])
def test_knn_scorer_is_kth_neighbour_cosine(k, expected_deg):
    train = at(0, 10, 20, 30, 40, 150)
    scorer = make_scorer("knn", k=k).fit(train, ["a"] * 6)
    np.testing.assert_allclose(scorer.score(at(0)), [np.cos(np.deg2rad(expected_deg))], atol=1e-6)


def test_msp_scorer_hand_case():
    protos = Prototypes.fit(at(0, 90), ["a", "b"])
    scorer = make_scorer("msp", temperature=1.0).fit(at(0, 90), ["a", "b"], protos)
    e = np.e
    np.testing.assert_allclose(scorer.score(at(0, 45)), [e / (e + 1), 0.5], atol=1e-6)


def ledoit_wolf_oracle(x: np.ndarray) -> np.ndarray:
    """Ledoit & Wolf (2004) shrinkage towards mu * I, written out in numpy (x centred)."""
    n, d = x.shape
    s = x.T @ x / n
    mu = np.trace(s) / d
    delta = ((s - mu * np.eye(d)) ** 2).sum() / d
    beta = sum(((np.outer(v, v) - s) ** 2).sum() for v in x) / (n * n) / d
    shrink = min(beta, delta) / delta
    return (1 - shrink) * s + shrink * mu * np.eye(d)


def test_mahalanobis_matches_scipy_with_numpy_ledoit_wolf():
    rng = np.random.default_rng(5)
    means = unit(rng.standard_normal((3, 5))) * 3
    labels = rng.integers(0, 3, 90)
    x = unit(means[labels] + rng.standard_normal((90, 5)))
    scorer = MahalanobisScorer().fit(x, labels.astype(str))
    x64 = x.astype(np.float64)
    class_means = np.stack([x64[labels == c].mean(0) for c in range(3)])
    precision = np.linalg.inv(ledoit_wolf_oracle(x64 - class_means[labels]))
    q = unit(rng.standard_normal((7, 5)))
    oracle = np.array([[mahalanobis(v, m, precision) for m in class_means] for v in q.astype(np.float64)])
    np.testing.assert_allclose(scorer.distances(q), oracle, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(scorer.score(q), -oracle.min(axis=1), rtol=1e-6, atol=1e-8)


def separable_toy(rng: np.random.Generator):
    centres = np.eye(16, dtype=np.float32)[:4]  # 3 known classes and 1 unknown, orthogonal
    labels = rng.integers(0, 3, 300)
    known = unit(centres[labels] + 0.15 * rng.standard_normal((300, 16)))
    unknown = unit(centres[3] + 0.15 * rng.standard_normal((100, 16)))
    return known[:200], labels[:200].astype(str), known[200:], unknown


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_separable_toy_ood_has_auroc_near_one(name):
    train, labels, known, unknown = separable_toy(np.random.default_rng(6))
    scorer = make_scorer(name).fit(train, labels, Prototypes.fit(train, labels))
    s_known, s_unknown = scorer.score(known), scorer.score(unknown)
    assert s_known.shape == (100,) and s_unknown.shape == (100,)
    auroc = roc_auc_score(np.r_[np.ones(100), np.zeros(100)], np.r_[s_known, s_unknown])
    # relative Mahalanobis subtracts the background distance, which on this far-OOD toy grows along
    # the unknown's (zero-variance) direction as much as the class distance does: 0.979 measured
    assert auroc > (0.95 if name == "relative_mahalanobis" else 0.99)


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_unfitted_scorer_raises(name):
    with pytest.raises(EmptyIndex):
        make_scorer(name).score(at(0))


def test_unknown_scorer_lists_valid_ones():
    with pytest.raises(InvalidInput, match="prototype, knn, mahalanobis, msp"):
        make_scorer("energy")
    with pytest.raises(InvalidInput, match="bad options"):
        make_scorer("knn", temperature=3)


@pytest.mark.parametrize(("n", "tpr"), [(1000, 0.95), (100, 0.95), (37, 0.95), (500, 0.9), (20, 0.99)])
def test_calibration_accepts_target_fraction_of_known(n, tpr):
    scores = np.random.default_rng(n).normal(size=n)
    threshold = calibrate(scores, tpr=tpr)
    accepted = (~is_unknown(scores, threshold)).mean()
    assert tpr <= accepted < tpr + 1.0 / n + 1e-12
    assert threshold in scores


def test_calibration_with_ties_and_errors():
    assert calibrate(np.array([1.0] * 10 + [0.0]), tpr=0.95) == 0.0  # 10/11 < 0.95 at t=1
    assert calibrate(np.array([1.0] * 20), tpr=0.95) == 1.0
    for bad in (np.array([]), np.array([np.nan, 1.0])):
        with pytest.raises(InvalidInput):
            calibrate(bad)
    with pytest.raises(InvalidInput):
        calibrate(np.ones(5), tpr=0.0)


def test_is_unknown_scalar_and_array():
    assert is_unknown(0.2, 0.5) is True and is_unknown(0.5, 0.5) is False
    assert is_unknown(np.array([0.1, 0.9]), 0.5).tolist() == [True, False]
