"""Adjusted classify-and-count (index/metrics/counts.py) on cases whose confusion is known."""

from __future__ import annotations

import numpy as np
import pytest

from index.errors import InvalidInput
from index.metrics.counts import (
    CountConfusion,
    adjusted_counts,
    confusion_of,
    project_simplex,
    relative_errors,
    solve_shares,
)

CLASSES = ("a", "b", "c")
OUTCOMES = ("a", "b", "c", "unknown")
# P(answer | true): b draws answers from a and c, so answers over-count b and under-count a and c
RATES = np.array([[0.6, 0.3, 0.05, 0.05], [0.1, 0.8, 0.05, 0.05], [0.05, 0.15, 0.75, 0.05]])
TRUTH = np.array([300, 100, 600])


def known_confusion(per_class: int = 1000) -> CountConfusion:
    crops = np.rint(RATES * per_class).astype(int)
    return CountConfusion(CLASSES, OUTCOMES, tuple(tuple(int(x) for x in r) for r in crops))


def test_adjusted_counts_recover_the_truth_that_raw_counts_miss():
    answers = np.rint(RATES.T @ TRUTH).astype(int)  # the sample answered exactly at the known rates
    result = adjusted_counts(answers, known_confusion(), draws=0)
    raw_error = relative_errors(answers[:3], TRUTH).mean()
    assert raw_error > 0.4  # classify-and-count is far off: b counted 2.6x
    np.testing.assert_allclose(result.adjusted, TRUTH, atol=0.5)  # skipping the adjustment fails here
    assert result.adjusted.sum() == pytest.approx(answers.sum())


def test_a_drawn_sample_is_recovered_within_its_interval():
    rng = np.random.default_rng(7)
    true = np.repeat(np.arange(3), TRUTH)
    answers = np.bincount([rng.choice(4, p=RATES[t]) for t in true], minlength=4)
    val_true = np.repeat(np.arange(3), 1000)
    val_answers = [rng.choice(4, p=RATES[t]) for t in val_true]
    confusion = confusion_of([CLASSES[t] for t in val_true], [OUTCOMES[a] for a in val_answers], CLASSES, OUTCOMES)
    result = adjusted_counts(answers, confusion, rng=np.random.default_rng(1))
    adjusted_error, raw_error = relative_errors(result.adjusted, TRUTH), relative_errors(answers[:3], TRUTH)
    assert adjusted_error.mean() < 0.3 < raw_error.mean() and adjusted_error.max() < raw_error.max() / 2
    assert ((result.low <= TRUTH) & (TRUTH <= result.high)).all(), (result.low, result.adjusted, result.high)
    assert (result.high - result.low < 0.2 * TRUTH.sum()).all()  # an interval, not the whole range


def test_the_interval_covers_the_truth_most_of_the_time():
    rng = np.random.default_rng(3)
    covered = []
    for _ in range(10):
        true = np.repeat(np.arange(3), TRUTH // 4)
        answers = np.bincount([rng.choice(4, p=RATES[t]) for t in true], minlength=4)
        val_true = np.repeat(np.arange(3), 150)
        val_answers = [rng.choice(4, p=RATES[t]) for t in val_true]
        conf = confusion_of([CLASSES[t] for t in val_true], [OUTCOMES[a] for a in val_answers], CLASSES, OUTCOMES)
        r = adjusted_counts(answers, conf, rng=rng, draws=50)
        covered.append((r.low <= TRUTH // 4) & (TRUTH // 4 <= r.high))
    assert np.mean(covered) >= 0.75  # nominal 0.9


def test_the_solver_matches_scipys_nnls_with_the_sum_held_by_a_heavy_row():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(0)
    for _ in range(20):
        rates = rng.dirichlet(np.ones(6) * 0.5, size=5)
        observed = rng.dirichlet(np.ones(6))
        weight = 1e4
        a = np.vstack([rates.T, weight * np.ones((1, 5))])
        b = np.concatenate([observed, [weight]])
        oracle = optimize.nnls(a, b)[0]
        ours = solve_shares(rates, observed)
        assert ours.min() >= 0 and ours.sum() == pytest.approx(1.0)
        costs = [np.sum((rates.T @ p - observed) ** 2) for p in (ours, oracle / oracle.sum())]
        assert costs[0] <= costs[1] + 1e-9


def test_the_simplex_projection():
    np.testing.assert_allclose(project_simplex(np.array([0.2, 0.3, 0.5])), [0.2, 0.3, 0.5])
    np.testing.assert_allclose(project_simplex(np.array([2.0, 0.0])), [1.0, 0.0])
    np.testing.assert_allclose(project_simplex(np.array([0.5, 0.5, -1.0])), [0.5, 0.5, 0.0])


def test_a_class_without_validation_crops_is_counted_as_answered_and_named():
    conf = confusion_of(["a", "a", "b"], ["a", "b", "b"], CLASSES, OUTCOMES)
    assert conf.assumed == ("c",)
    result = adjusted_counts(np.array([0, 0, 5, 0]), conf, draws=0)
    np.testing.assert_allclose(result.adjusted, [0, 0, 5], atol=1e-6)
    assert any("no validation crop of c" in n for n in result.notes)


def test_indistinguishable_classes_are_named_in_a_note():
    crops = ((5, 5, 0), (5, 5, 0))
    result = adjusted_counts(np.array([4, 6, 0]), CountConfusion(("a", "b"), ("a", "b", "unknown"), crops), draws=0)
    assert result.adjusted.sum() == pytest.approx(10)
    assert any("cannot be told apart" in n for n in result.notes)


@pytest.mark.parametrize(
    "crops,words",
    [
        (((0, 0, 0), (1, 2, 0)), "no validation crop"),
        (((1, -1, 0), (1, 2, 0)), "no negative"),
        (((1, 2), (1, 2), (1, 2)), "no more classes than answers"),
    ],
)
def test_degenerate_confusions_are_one_clear_error(crops, words):
    outcomes = ("a", "b", "unknown")[: len(crops[0])]
    classes = ("a", "b", "c")[: len(crops)]
    with pytest.raises(InvalidInput, match=words):
        adjusted_counts(np.ones(len(outcomes), dtype=int), CountConfusion(classes, outcomes, crops))


def test_answers_of_the_wrong_length_are_refused():
    with pytest.raises(InvalidInput, match="one per outcome"):
        adjusted_counts(np.array([1, 2]), known_confusion())


def test_an_empty_sample_counts_nothing():
    result = adjusted_counts(np.zeros(4, dtype=int), known_confusion())
    assert result.adjusted.tolist() == [0, 0, 0]


def test_the_confusion_round_trips_through_its_dict():
    conf = confusion_of(["a", "b"], ["b", "unknown"], CLASSES, OUTCOMES)
    assert CountConfusion.from_dict(conf.to_dict()) == conf
