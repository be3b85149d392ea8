"""YOLOX's input and output in numpy, on hand-made tensors: letterbox, grid decoding, scores, NMS."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import nms as torch_nms

from embedder.detection.yolox_decode import (
    decode,
    grids,
    letterbox,
    nms,
    proposals,
    to_frame,
)

# a 64 x 64 input: stride 8 -> 8 x 8 cells (rows 0..63), 16 -> 4 x 4 (64..79), 32 -> 2 x 2 (80..83)
SIZE, ROWS = 64, 84


def row(dx, dy, w_cells, h_cells, obj, classes):
    return [dx, dy, math.log(w_cells), math.log(h_cells), obj, *classes]


def hand_made() -> np.ndarray:
    raw = np.zeros((ROWS, 7), np.float32)
    raw[:, 5:] = 0.01  # every other row: objectness 0 -> score 0
    # stride 8, cell x=3, y=2 (row 2 * 8 + 3 = 19): centre (3.5, 2.5) * 8 = (28, 20), size 2 x 4 cells = 16 x 32
    raw[19] = row(0.5, 0.5, 2, 4, 0.9, [0.1, 0.8])
    # its neighbour (row 20) predicts nearly the same box, weaker: NMS removes it
    raw[20] = row(-0.4, 0.5, 2, 4, 0.5, [0.6, 0.2])
    # stride 32, cell x=0, y=1 (row 80 + 1 * 2 + 0 = 82): centre (16, 48), size 1 x 0.5 cells = 32 x 16
    raw[82] = row(0.5, 0.5, 1, 0.5, 0.7, [0.5, 0.1])
    return raw


def test_grids_are_row_major_per_stride():
    cells, steps = grids(SIZE, SIZE)
    assert len(cells) == ROWS and (steps[:64] == 8).all() and (steps[64:80] == 16).all() and (steps[80:] == 32).all()
    assert tuple(cells[19]) == (3, 2) and tuple(cells[82]) == (0, 1)


def test_a_416_input_has_the_3549_rows_of_the_shipped_model():
    assert len(grids(416, 416)[0]) == 3549


def test_decoding_a_hand_made_tensor():
    boxes = decode(hand_made(), SIZE, SIZE)
    assert boxes[19] == pytest.approx([20, 4, 36, 36], abs=1e-4)
    assert boxes[82] == pytest.approx([0, 40, 32, 56], abs=1e-4)
    assert boxes[0] == pytest.approx([-4, -4, 4, 4], abs=1e-4)  # zeros: one stride wide, centred on the corner


def test_proposals_score_objectness_times_best_class_and_suppress_duplicates():
    boxes, scores, labels = proposals(hand_made(), SIZE, SIZE, score_thresh=0.05, nms_thresh=0.5)
    assert scores == pytest.approx([0.9 * 0.8, 0.7 * 0.5])  # row 20 (0.5 x 0.6 = 0.3) overlaps row 19: gone
    assert labels.tolist() == [1, 0]
    assert boxes == pytest.approx(np.array([[20, 4, 36, 36], [0, 40, 32, 56]]), abs=1e-4)


def test_a_lower_threshold_or_looser_nms_keeps_the_duplicate():
    _, scores, _ = proposals(hand_made(), SIZE, SIZE, score_thresh=0.05, nms_thresh=0.95)
    assert scores == pytest.approx([0.72, 0.35, 0.3])


def test_a_tensor_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        decode(np.zeros((3549, 85), np.float32), SIZE, SIZE)


@pytest.mark.parametrize("seed", range(5))
def test_nms_agrees_with_torchvision(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (60, 2))], axis=1).astype(np.float32)
    scores = rng.permutation(60).astype(np.float32) / 60  # distinct: one right order
    ours = nms(boxes, scores, 0.5)
    theirs = torch_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    assert ours.tolist() == theirs.tolist()


def test_letterbox_is_bgr_top_left_on_grey_114():
    image = Image.new("RGB", (100, 50), (10, 20, 30))
    x, scale = letterbox(image, 64)
    assert x.shape == (3, 64, 64) and scale == pytest.approx(0.64)
    assert x[:, 0, 0].tolist() == [30, 20, 10]  # B, G, R
    assert (x[:, 32:, :] == 114).all() and x[:, :32, :].max() == 30  # 50 * 0.64 = 32 rows of frame


def test_boxes_go_back_to_frame_pixels_clipped():
    xywh = to_frame(np.array([[-6.4, 6.4, 32.0, 70.0]], np.float32), 0.64, 100, 50)
    assert xywh == pytest.approx(np.array([[0, 10, 50, 40]]), abs=1e-4)
