"""Metrics against hand-computed cases, scikit-learn and pytorch-metric-learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

from index.errors import InvalidInput
from index.metrics.classification import classification_metrics, ood_metrics, retrieval_metrics, top_k_accuracy


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# ---- classification ----------------------------------------------------------------

CLASSES = ("a", "b", "c")
# rows: true a, a, b, b, c, c ; predictions (argmax): a, b, b, b, a, c
SCORES = np.array(
    [
        [0.9, 0.1, 0.0],
        [0.3, 0.6, 0.1],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.3],
        [0.5, 0.1, 0.4],
        [0.1, 0.2, 0.9],
    ]
)
TRUE = ["a", "a", "b", "b", "c", "c"]


def test_classification_hand_case():
    report = classification_metrics(TRUE, SCORES, CLASSES)
    assert report.top1 == pytest.approx(4 / 6)
    assert report.top5 is None  # only 3 classes: top-5 does not apply
    # a: predicted a twice (1 right) -> P 1/2, R 1/2 ; b: predicted 3 times (2 right) -> P 2/3, R 1 ;
    # c: predicted once (right) -> P 1, R 1/2
    np.testing.assert_allclose(report.precision, [1 / 2, 2 / 3, 1.0])
    np.testing.assert_allclose(report.recall, [1 / 2, 1.0, 1 / 2])
    f1 = [2 * p * r / (p + r) for p, r in zip(report.precision, report.recall, strict=False)]
    np.testing.assert_allclose(report.f1, f1)
    assert report.macro["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert report.weighted["recall"] == pytest.approx(4 / 6)  # equal supports of 2
    assert report.support == (2, 2, 2)
    assert report.confusion == ((1, 1, 0), (0, 2, 0), (1, 0, 1))
    assert report.to_dict()["classes"] == CLASSES


def test_top2_hand_case():
    y = np.array([CLASSES.index(t) for t in TRUE])
    # top-2 sets: {a,b} {b,a} {b,a} {b,c} {a,c} {c,b} -> every true class is inside
    assert top_k_accuracy(y, SCORES, 2) == 1.0
    assert top_k_accuracy(y, SCORES, 1) == pytest.approx(4 / 6)


def test_top5_hand_case_with_six_classes():
    """6 classes: the true class is 1st, 5th or 6th by score -> top-5 = 2/3, top-1 = 1/3."""
    scores = np.array([[6, 5, 4, 3, 2, 1], [2, 6, 5, 4, 3, 1], [6, 5, 4, 3, 2, 1]], dtype=float)
    classes = tuple("abcdef")
    report = classification_metrics(["a", "a", "f"], scores, classes)
    assert report.top1 == pytest.approx(1 / 3)
    assert report.top5 == pytest.approx(2 / 3)


@pytest.mark.parametrize("n_classes, k", [(2, 1), (3, 2), (3, 3), (10, 5)])
def test_top_k_edges(n_classes, k):
    """Two columns (sklearn's binary case) and k >= C still mean "true class among the k best"."""
    rng = np.random.default_rng(n_classes + k)
    scores = rng.random((50, n_classes))
    y = rng.integers(0, n_classes, 50)
    ranks = (scores > scores[np.arange(50), y][:, None]).sum(1)  # better-scored columns per row
    assert top_k_accuracy(y, scores, k) == pytest.approx(float((ranks < k).mean()))


@pytest.mark.parametrize(
    ("y", "scores"),
    [(["a", "z"], SCORES[:2]), (TRUE, SCORES[:, :2]), ([], np.zeros((0, 3)))],
    ids=["unknown_label", "shape", "empty"],
)
def test_classification_bad_input(y, scores):
    with pytest.raises(InvalidInput):
        classification_metrics(y, scores, CLASSES)


# ---- OOD ---------------------------------------------------------------------------


def test_ood_perfect_and_reversed_separation():
    known, unknown = np.linspace(0.6, 1.0, 40), np.linspace(0.0, 0.4, 60)
    good = ood_metrics(known, unknown, threshold=0.5)
    assert (good.auroc, good.fpr_at_95_tpr, good.aupr_in, good.aupr_out) == (1.0, 0.0, 1.0, 1.0)
    assert (good.known_accuracy, good.unknown_accuracy) == (1.0, 1.0)
    bad = ood_metrics(unknown, known, threshold=0.5)
    assert bad.auroc == 0.0 and bad.fpr_at_95_tpr == 1.0
    assert (bad.known_accuracy, bad.unknown_accuracy) == (0.0, 0.0)


def test_ood_fpr_at_95_hand_case():
    known = np.arange(1, 21, dtype=float)  # 20 known: 95% TPR keeps the top 19 (scores >= 2)
    unknown = np.array([0.5, 1.5, 2.5, 3.5])  # 2.5 and 3.5 sit above 2 -> FPR 2/4
    report = ood_metrics(known, unknown, threshold=2.0)
    assert report.fpr_at_95_tpr == 0.5
    assert report.known_accuracy == pytest.approx(19 / 20)
    assert report.unknown_accuracy == 0.5


def test_ood_needs_both_sets():
    with pytest.raises(InvalidInput):
        ood_metrics(np.array([1.0]), np.array([]), 0.5)


# ---- retrieval ---------------------------------------------------------------------


def clustered(seed: int, n: int, n_classes: int, noise: float, d: int = 16):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, d))
    labels = rng.integers(0, n_classes, n)
    return unit(centres[labels] + noise * rng.standard_normal((n, d))), labels


@pytest.mark.parametrize(("seed", "n", "n_classes", "noise"), [(0, 300, 5, 0.8), (1, 400, 12, 1.5), (2, 150, 3, 3.0)])
def test_retrieval_matches_pytorch_metric_learning(seed, n, n_classes, noise):
    x, labels = clustered(seed, n, n_classes, noise)
    labels[0] = 99  # a singleton query, which both sides leave out
    ours = retrieval_metrics(x, labels)
    calc = AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r"), k="max_bin_count", device=torch.device("cpu")
    )
    theirs = calc.get_accuracy(torch.from_numpy(x), torch.from_numpy(labels))
    assert ours.recall[1] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours.map_at_r == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)
    assert ours.queries == n - 1
    assert ours.recall[1] <= ours.recall[5] <= ours.recall[10]


def test_retrieval_hand_case():
    # 1-D angles: labels a a b b ; positions 0, 10, 20, 100 degrees
    r = np.deg2rad([0, 10, 20, 100])
    x = np.stack([np.cos(r), np.sin(r)], 1).astype(np.float32)
    out = retrieval_metrics(x, ["a", "a", "b", "b"], ks=(1, 2))
    # nearest others: 0->10 (a ok), 10->0 (a ok), 20->10 (a, wrong), 100->20 (b ok)
    assert out.recall[1] == 0.75
    # within 2: 20's neighbours 10, 0 -> no b -> still wrong
    assert out.recall[2] == 0.75
    # R = 1 for everyone, so MAP@R = precision@1
    assert out.map_at_r == 0.75


def test_retrieval_map_at_r_hand_case():
    # angles 0 (a), 5 (b), 11 (a), 15 (a); the b is a singleton and is left out; R = 2 for each a
    r = np.deg2rad([0, 5, 11, 15])
    x = np.stack([np.cos(r), np.sin(r)], 1).astype(np.float32)
    out = retrieval_metrics(x, ["a", "b", "a", "a"], ks=(1, 2))
    # q=0:  5(b) 11(a)  -> AP@R = (0 + 1/2) / 2 = 0.25
    # q=11: 15(a) 5(b)  -> AP@R = (1 + 0) / 2   = 0.5
    # q=15: 11(a) 5(b)  -> AP@R = (1 + 0) / 2   = 0.5
    assert out.queries == 3
    assert out.map_at_r == pytest.approx((0.25 + 0.5 + 0.5) / 3)
    assert out.recall[1] == pytest.approx(2 / 3)
    assert out.recall[2] == 1.0


def test_retrieval_needs_a_shared_label():
    with pytest.raises(InvalidInput):
        retrieval_metrics(unit(np.eye(3)), ["a", "b", "c"])
