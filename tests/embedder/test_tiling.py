"""Tiled detection: the windows cover the frame, boxes come back shifted, duplicates merge."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from embedder.detection.tiling import tile_windows, tiled_detect
from index.errors import InvalidInput


@pytest.mark.parametrize(
    "width,height,tile,overlap", [(1024, 768, 512, 0.25), (1000, 333, 256, 0.2), (300, 200, 512, 0.25)]
)
def test_windows_cover_every_pixel_and_stay_inside(width, height, tile, overlap):
    covered = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in tile_windows(width, height, tile, overlap):
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height and x1 - x0 <= tile and y1 - y0 <= tile
        covered[y0:y1, x0:x1] = True
    assert covered.all()


def test_neighbours_overlap_by_at_least_the_asked_share():
    xs = sorted({w[0] for w in tile_windows(1024, 512, 512, 0.25)})
    assert xs[0] == 0 and xs[-1] == 512 and all(b - a <= 384 for a, b in itertools.pairwise(xs))


def test_bad_tiles_are_refused():
    with pytest.raises(InvalidInput):
        tile_windows(100, 100, 16)


def test_boxes_are_shifted_back_and_duplicates_merged():
    """A fake detector that finds the red square wherever it is in the image it is given."""
    image = Image.new("RGB", (800, 400))
    image.paste((255, 0, 0), (500, 100, 540, 140))

    def detect(view: Image.Image):
        a = np.asarray(view)[:, :, 0] > 128
        if not a.any():
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        ys, xs = np.nonzero(a)
        return np.array([[xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]], np.float32), np.array(
            [0.9], np.float32
        )

    boxes, scores = tiled_detect(detect, image, tile=400, overlap=0.25)
    assert boxes.tolist() == [[500, 100, 40, 40]] and scores.tolist() == pytest.approx([0.9])
