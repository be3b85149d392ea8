"""index.scoring.ood.KnnScorer ``few_shot``: a species known from 5 crops is accepted like a trained one,
without accepting unknown crops or changing the scores of crops far from it."""

from __future__ import annotations

import numpy as np
import pytest

from index.scoring.ood import KnnScorer, calibrate

D = 32


def blob(centre: np.ndarray, n: int, rng: np.random.Generator, spread: float = 0.12) -> np.ndarray:
    x = centre + spread * rng.standard_normal((n, D)) / np.sqrt(D)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((8, D))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    train = np.concatenate([blob(c, 300, rng) for c in centres[:5]])
    labels = np.repeat([f"known{i}" for i in range(5)], 300)
    val = np.concatenate([blob(c, 40, rng) for c in centres[:5]])
    support, siblings = blob(centres[5], 5, rng), blob(centres[5], 200, rng)
    unknown = np.concatenate([blob(c, 100, rng) for c in centres[6:]])
    return (np.concatenate([train, support]), np.concatenate([labels, ["added"] * 5]), val, siblings, unknown)


def accepted(scorer: KnnScorer, val: np.ndarray, x: np.ndarray) -> float:
    return float((scorer.score(x) >= calibrate(scorer.score(val))).mean())


def test_few_shot_species_is_accepted_unknowns_are_not(world):
    train, labels, val, siblings, unknown = world
    plain = KnnScorer().fit(train, labels)
    few = KnnScorer(few_shot=["added"]).fit(train, labels)
    assert accepted(plain, val, siblings) < 0.3  # the gap: 5 crops are too sparse for the 5th neighbour
    assert accepted(few, val, siblings) >= 0.8
    assert accepted(few, val, unknown) == accepted(plain, val, unknown) == 0.0
    assert [(name, k_c) for name, _, k_c, _ in few.small] == [("added", 1)]


def test_crops_far_from_the_few_shot_species_score_as_before(world):
    train, labels, val, _, _ = world
    plain = KnnScorer().fit(train, labels)
    few = KnnScorer(few_shot=["added"]).fit(train, labels)
    np.testing.assert_array_equal(few.score(val), plain.score(val))


def test_a_single_example_or_no_few_shot_class_changes_nothing(world):
    train, labels, val, siblings, _ = world
    one = np.concatenate([train[:1500], train[1500:1501]]), np.concatenate([labels[:1500], ["added"]])
    few = KnnScorer(few_shot=["added"]).fit(*one)
    assert few.small == []
    np.testing.assert_array_equal(few.score(siblings), KnnScorer().fit(*one).score(siblings))
    assert KnnScorer(few_shot=["absent"]).fit(train, labels).small == []
