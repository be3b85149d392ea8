"""The fused space (index/scoring/fusion.py): hand-computed cosines, centring, round trip, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from index.errors import InvalidInput
from index.scoring.fusion import Fusion, centred


def at(deg: float) -> np.ndarray:
    r = np.deg2rad(deg)
    return np.array([[np.cos(r), np.sin(r)]], np.float32)


@pytest.mark.parametrize(
    "w, tuned_deg, general_deg, expected",
    [
        (0.3, 60, 90, 0.3 * 0.5 + 0.7 * 0.0),
        (0.5, 0, 180, 0.5 * 1.0 + 0.5 * -1.0),
        (0.9, 90, 0, 0.9 * 0.0 + 0.1 * 1.0),
        (1.0, 60, 180, 0.5),
        (0.0, 60, 180, -1.0),
    ],
)
def test_fused_cosine_is_the_weighted_sum_of_the_two(w, tuned_deg, general_deg, expected):
    fusion = Fusion(w, np.zeros(2, np.float32), np.zeros(2, np.float32))  # no centring: unit rows stay
    a = fusion.fuse(at(0), at(0))
    b = fusion.fuse(at(tuned_deg), at(general_deg))
    assert np.linalg.norm(b) == pytest.approx(1.0, abs=1e-6)
    assert (a @ b.T).item() == pytest.approx(expected, abs=1e-6)


def test_centring_subtracts_the_mean_and_renormalises():
    out = centred(np.array([[2.0, 1.0], [1.0, 0.0]]), np.array([1.0, 0.0]))
    np.testing.assert_allclose(out[0], [2**-0.5, 2**-0.5], atol=1e-6)
    np.testing.assert_array_equal(out[1], [0.0, 0.0])  # the mean itself: zero, not NaN


def test_fit_takes_each_space_training_mean():
    t = np.array([[1, 0], [0, 1]], np.float32)
    g = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
    fusion = Fusion.fit(t, g, 0.4)
    np.testing.assert_allclose(fusion.tuned_mean, [0.5, 0.5])
    np.testing.assert_allclose(fusion.general_mean, [0.5, 0, 0.5])
    assert fusion.dim == 5
    # centred on the mean the two training crops point opposite ways in both spaces
    f = fusion.fuse(t, g)
    assert float(f[0] @ f[1]) == pytest.approx(-1.0, abs=1e-6)


def test_round_trip_through_json_gives_the_same_vectors():
    rng = np.random.default_rng(0)
    t, g = rng.normal(size=(20, 8)).astype(np.float32), rng.normal(size=(20, 5)).astype(np.float32)
    fusion = Fusion.fit(t, g, 0.3)
    again = Fusion.from_dict(json.loads(json.dumps(fusion.to_dict())))
    np.testing.assert_array_equal(again.fuse(t, g), fusion.fuse(t, g))
    assert again.weight == 0.3


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda f: f.fuse(np.ones((2, 2)), np.ones((3, 3))), "one per crop"),
        (lambda f: f.fuse(np.ones((2, 3)), np.ones((2, 3))), "fitted on 2 / 3"),
        (lambda f: Fusion(1.5, f.tuned_mean, f.general_mean), "in \\[0, 1\\]"),
        (lambda f: Fusion.fit(np.ones((2, 2)), np.ones((1, 3)), 0.5), "same training crops"),
    ],
)
def test_mismatches_raise_invalid_input(call, message):
    fusion = Fusion(0.5, np.zeros(2, np.float32), np.zeros(3, np.float32))
    with pytest.raises(InvalidInput, match=message):
        call(fusion)
