"""Class priors as a logit adjustment (index.scoring.priors)."""

from __future__ import annotations

import numpy as np
import pytest

from index.errors import InvalidInput, SourceError
from index.scoring.calibration import softmax
from index.scoring.priors import ClassPriors, PriorsRequest, adjusted_logits, fit_priors, read_priors_csv

CLASSES = ["a", "b", "c"]
LABELS = ["a"] * 6 + ["b"] * 3 + ["c"]


def test_train_priors_are_the_training_frequencies_and_added_gets_the_median():
    p = fit_priors(LABELS, CLASSES, "train", 1.0)
    assert p.weights == pytest.approx({"a": 0.6, "b": 0.3, "c": 0.1})
    assert p.added_weight == pytest.approx(0.3)
    assert p.log_bias(["a", "new"]) == pytest.approx(np.log([0.6, 0.3]))


def test_adjustment_is_softmax_of_logits_plus_tau_log_prior():
    p = fit_priors(LABELS, CLASSES, "train", 0.5)
    sims = np.array([[0.2, 0.5, 0.9], [0.9, 0.1, 0.3]])
    t = 0.1
    expected = softmax(sims / t + 0.5 * np.log([0.6, 0.3, 0.1]))
    assert adjusted_logits(sims, CLASSES, t, p) == pytest.approx(sims / t + 0.5 * np.log([0.6, 0.3, 0.1]))
    assert p.adjust(softmax(sims / t), CLASSES) == pytest.approx(expected)
    # a close call moves to the frequent class; a clear one does not
    close = np.array([[0.50, 0.49, 0.0]])
    assert adjusted_logits(close, CLASSES, 0.1, p).argmax() == 0
    assert adjusted_logits(np.array([[0.49, 0.50, 0.0]]), CLASSES, 0.1, p).argmax() == 0
    assert adjusted_logits(np.array([[0.2, 0.9, 0.0]]), CLASSES, 0.1, p).argmax() == 1


@pytest.mark.parametrize(
    "priors", [fit_priors(LABELS, CLASSES, "train", 0.0), fit_priors(LABELS, CLASSES, "balanced", 1.0)]
)
def test_off_priors_change_nothing(priors):
    assert not priors.active
    probs = softmax(np.array([[0.2, 0.5, 0.9]]) / 0.1)
    assert priors.adjust(probs, CLASSES) == pytest.approx(probs)


def test_file_priors_must_name_every_class(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("class,weight\na,2\nb,1\nc,1\nd,4\n")
    target = read_priors_csv(f)
    assert target == {"a": 2.0, "b": 1.0, "c": 1.0, "d": 4.0}
    p = fit_priors([], CLASSES, "file", 1.0, target, str(f))
    assert p.weights["a"] == pytest.approx(0.5) and p.weights["d"] == pytest.approx(1.0)  # d: for a species added later
    with pytest.raises(InvalidInput, match="c"):
        fit_priors([], CLASSES, "file", 1.0, {"a": 1, "b": 1})
    with pytest.raises(InvalidInput):
        fit_priors([], CLASSES, "file", 1.0, {"a": 1, "b": 1, "c": 0})
    bad = tmp_path / "bad.csv"
    bad.write_text("a,1\nb,x\n")
    with pytest.raises(SourceError):
        read_priors_csv(bad)


def test_request_keeps_the_stored_choice():
    stored = fit_priors(LABELS, CLASSES, "train", 0.75)
    assert PriorsRequest().resolve(LABELS, CLASSES, stored) == stored
    assert PriorsRequest(tau=0.5).resolve(LABELS, CLASSES, stored).tau == 0.5
    assert PriorsRequest("balanced").resolve(LABELS, CLASSES, stored).source == "balanced"
    with pytest.raises(InvalidInput):
        PriorsRequest("file").resolve(LABELS, CLASSES, stored)
    with pytest.raises(InvalidInput):
        PriorsRequest("train", -1.0).resolve(LABELS, CLASSES, None)


def test_round_trip():
    p = fit_priors(LABELS, CLASSES, "train", 0.5)
    assert ClassPriors.from_dict(p.to_dict()) == p
