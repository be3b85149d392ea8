"""``index.metrics.boxes.match_truth``: pycocotools' box-to-truth matching, against hand-checked boxes."""

from __future__ import annotations

import numpy as np
import pytest

from index.errors import InvalidInput
from index.metrics.boxes import match_truth

SIZE = [(100, 100)]


def boxes(*rows) -> np.ndarray:
    return np.asarray(rows, np.float32).reshape(-1, 4)


def scores(*values) -> np.ndarray:
    return np.asarray(values, np.float32)


def test_exact_boxes_match_their_own_index_and_a_missed_box_is_minus_one():
    truth = [boxes((10, 10, 20, 20), (60, 60, 30, 30), (0, 70, 10, 10))]
    found = [boxes((80, 0, 10, 10), (60, 60, 30, 30), (10, 10, 20, 20))]  # a stray box first: indices are found's
    (hits,) = match_truth(truth, SIZE, found, [scores(0.9, 0.8, 0.7)])
    assert hits.tolist() == [2, 1, -1] and hits.dtype == np.int64


@pytest.mark.parametrize(
    ("detection", "matched"),
    [
        ((0, 0, 10, 20), True),  # IoU 100/200 = 0.5 exactly: a match (>= 0.5)
        ((0, 0, 10, 21), False),  # IoU 100/210: just under
        ((5, 0, 10, 10), False),  # shifted half a width: IoU 50/150
        ((1, 0, 10, 10), True),  # shifted one pixel: IoU 90/110
    ],
)
def test_the_iou_threshold_is_inclusive_and_shifted_boxes_do_not_match(detection, matched):
    (hits,) = match_truth([boxes((0, 0, 10, 10))], SIZE, [boxes(detection)], [scores(0.9)])
    assert hits.tolist() == ([0] if matched else [-1])


def test_the_better_scored_of_two_overlapping_detections_takes_the_box():
    """COCOeval matches greedily by score: the lower-scored duplicate is a false positive, even
    when it overlaps more, and a detection matches at most one truth box."""
    truth = [boxes((10, 10, 20, 20))]
    found = [boxes((10, 10, 20, 20), (11, 11, 20, 20))]
    assert match_truth(truth, SIZE, found, [scores(0.4, 0.9)])[0].tolist() == [1]
    assert match_truth(truth, SIZE, found, [scores(0.9, 0.4)])[0].tolist() == [0]
    two = [boxes((10, 10, 20, 20), (12, 12, 20, 20))]  # one detection over two truth boxes: only one found
    assert sorted(match_truth(two, SIZE, [boxes((11, 11, 20, 20))], [scores(0.9)])[0].tolist()) == [-1, 0]


def test_a_detection_matches_only_in_its_own_frame():
    truth = [boxes((10, 10, 20, 20)), boxes((50, 50, 20, 20)), boxes()]
    found = [boxes((50, 50, 20, 20)), boxes((50, 50, 20, 20), (10, 10, 20, 20)), boxes((10, 10, 20, 20))]
    hits = match_truth(truth, SIZE * 3, found, [scores(0.9), scores(0.5, 0.9), scores(0.9)])
    assert [h.tolist() for h in hits] == [[-1], [0], []]


def test_nothing_found_or_nothing_to_find():
    assert [
        h.tolist()
        for h in match_truth([boxes((1, 1, 5, 5)), boxes()], SIZE * 2, [boxes(), boxes()], [scores(), scores()])
    ] == [[-1], []]
    assert [h.tolist() for h in match_truth([boxes()], SIZE, [boxes((1, 1, 5, 5))], [scores(0.9)])] == [[]]


def test_an_iou_outside_zero_to_one_is_refused():
    with pytest.raises(InvalidInput, match="IoU"):
        match_truth([boxes()], SIZE, [boxes()], [scores()], iou=1.5)
