"""Choosing the decision scorer on held-out species' validation crops."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from index.errors import InvalidInput
from index.scoring.ood import calibrate, make_scorer
from index.scoring.ood_choice import choose_scorer


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _bimodal(rng):
    """Class 'a' is two far-apart clusters, so its prototype (mean) sits between them where the
    unknowns are: prototype similarity rates the unknowns as very known, knn does not."""
    e = np.eye(8)
    modes = [e[0], e[1], e[2]]  # a: e0 and e1; b: e2

    def draw(centre, n):
        return _unit(centre + rng.normal(size=(n, 8)) * 0.05)

    train = np.vstack([draw(modes[0], 40), draw(modes[1], 40), draw(modes[2], 80)])
    labels = np.array(["a"] * 80 + ["b"] * 80)
    known_val = np.vstack([draw(modes[0], 20), draw(modes[1], 20), draw(modes[2], 40)])
    unknown_val = draw((e[0] + e[1]) / np.sqrt(2), 30)
    return train, labels, known_val, unknown_val


def test_picks_best_by_validation_auroc_over_a_bad_default():
    train, labels, kv, uv = _bimodal(np.random.default_rng(0))
    choice = choose_scorer(train, labels, kv, uv, scorers=("prototype", "knn"), default="prototype")
    aurocs = {}
    for name in ("prototype", "knn"):
        s = make_scorer(name).fit(train, labels)
        aurocs[name] = roc_auc_score(np.r_[np.ones(len(kv)), np.zeros(len(uv))], np.r_[s.score(kv), s.score(uv)])
        assert choice.per_scorer[name]["auroc"] == pytest.approx(aurocs[name])
    assert aurocs["prototype"] < 0.5 < 0.95 < aurocs["knn"]  # the fixture does what it claims
    assert choice.scorer == "knn" and choice.source == "held-out validation"
    knn = make_scorer("knn").fit(train, labels)
    assert choice.threshold == pytest.approx(calibrate(knn.score(kv), 0.95))
    assert choice.n_unknown_val == 30 and choice.to_dict()["scorer"] == "knn"


def test_ties_go_to_the_default():
    rng = np.random.default_rng(1)
    train, labels, kv, _ = _bimodal(rng)
    far = _unit(-np.ones((20, 8)) + rng.normal(size=(20, 8)) * 0.05)  # every scorer separates these perfectly
    choice = choose_scorer(train, labels, kv, far, default="knn")
    assert all(v["auroc"] == pytest.approx(1.0) for v in choice.per_scorer.values())
    assert choice.scorer == "knn"  # not the first listed ("prototype") nor whichever max() meets first


def test_without_held_out_crops_falls_back_to_default_with_its_threshold():
    train, labels, kv, _ = _bimodal(np.random.default_rng(2))
    for unknown in (None, np.zeros((0, 8), np.float32)):
        choice = choose_scorer(train, labels, kv, unknown, default="mahalanobis")
        assert (choice.scorer, choice.source, choice.n_unknown_val) == ("mahalanobis", "default", 0)
        expected = calibrate(make_scorer("mahalanobis").fit(train, labels).score(kv), 0.95)
        assert choice.threshold == pytest.approx(expected)
        assert "auroc" not in choice.per_scorer["mahalanobis"]


def test_bad_default_raises():
    train, labels, kv, uv = _bimodal(np.random.default_rng(3))
    with pytest.raises(InvalidInput):
        choose_scorer(train, labels, kv, uv, scorers=("knn",), default="prototype")
