"""Temperature scaling and ECE: hand-computed ECE, recovery of a known temperature."""

import numpy as np
import pytest
from scipy.special import softmax

from index.errors import InvalidInput
from index.scoring.calibration import (
    calibrated_probabilities,
    expected_calibration_error,
    fit_temperature,
    nll,
)


def test_ece_hand_computed():
    # confidences 0.95, 0.55, 0.85, 0.75 (5 bins of 0.2); correct: yes, no, yes, yes
    p = np.array([[0.95, 0.05], [0.45, 0.55], [0.85, 0.15], [0.25, 0.75]])
    y = np.array([0, 0, 0, 1])
    # bin (0.8,1]: acc 1, conf 0.9 -> 0.5*0.1; bin (0.4,0.6]: acc 0, conf 0.55 -> 0.25*0.55;
    # bin (0.6,0.8]: acc 1, conf 0.75 -> 0.25*0.25; total 0.25
    assert expected_calibration_error(p, y, bins=5) == pytest.approx(0.25)
    # one bin: |mean acc 0.75 - mean conf 0.775| = 0.025 (catches per-sample |acc-conf| averaging = 0.25)
    assert expected_calibration_error(p, y, bins=1) == pytest.approx(0.025)


def test_fit_recovers_known_temperature():
    rng = np.random.default_rng(0)
    cos = rng.uniform(-1, 1, size=(6000, 5))
    true_t = 0.1
    y = np.array([rng.choice(5, p=row) for row in softmax(cos / true_t, axis=1)])
    cal = fit_temperature(cos, y)
    # z*T instead of z/T, or a fit that does not minimise NLL, lands far from 0.1
    assert cal.temperature == pytest.approx(true_t, rel=0.1)
    assert cal.nll_after < cal.nll_before
    grid = np.exp(np.linspace(np.log(0.01), np.log(5), 400))
    assert cal.nll_after <= min(nll(cos, y, t) for t in grid) + 1e-6
    # probabilities drawn from the true model are calibrated once T is right, not at T=1
    test = cal.evaluated(cos[:3000], y[:3000])
    assert test.ece_test < 0.03 < test.ece_test_uncalibrated
    np.testing.assert_allclose(cal.probabilities(cos[:3]), calibrated_probabilities(cos[:3], cal.temperature))
    assert set(cal.to_dict()) >= {"temperature", "ece_val", "ece_test", "nll_after"}


@pytest.mark.parametrize(
    "logits,labels",
    [
        (np.zeros((0, 3)), np.zeros(0, int)),
        (np.zeros((2, 1)), np.zeros(2, int)),
        (np.array([[0.1, np.nan]]), np.array([0])),
        (np.zeros((2, 3)), np.array([0, 3])),
        (np.zeros((2, 3)), np.array([0.0, 1.0])),
    ],
)
def test_bad_inputs_raise(logits, labels):
    with pytest.raises(InvalidInput):
        fit_temperature(logits, labels)


def test_bad_temperature_raises():
    with pytest.raises(InvalidInput):
        calibrated_probabilities(np.zeros((1, 2)), 0.0)
