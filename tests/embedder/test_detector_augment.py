"""The detector trainer's frame jitter: the zoomed window's boxes sit where their pixels went; EMA is evaluated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedder.detection.training import _target, _zoomed


def square_frame() -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.zeros(3, 120, 160)
    image[:, 40:80, 60:100] = 1.0
    return image, torch.tensor([[60.0, 40.0, 100.0, 80.0]])


@pytest.mark.parametrize("seed", range(6))
def test_a_zoomed_box_covers_its_pixels(seed):
    image, boxes = square_frame()
    crop, moved, labels = _zoomed(image, boxes, torch.tensor([3]), 0.4, np.random.default_rng(seed))
    assert crop.shape == image.shape
    bright = torch.nonzero(crop[0] > 0.5)
    if not len(moved):  # the square left the window (under 40% of it kept): no box, and little of it shows
        assert len(bright) < 0.4 * 40 * 40 * (160 / 96) ** 2
        return
    assert labels.tolist() == [3]
    y0, x0 = bright.min(0).values.tolist()
    y1, x1 = (bright.max(0).values + 1).tolist()
    assert moved[0].tolist() == pytest.approx([x0, y0, x1, y1], abs=2.5)


def test_no_zoom_and_a_flip_mirror_the_box():
    image = torch.zeros(3, 120, 160)
    image[:, 40:80, 20:60] = 1.0
    flipped, target = _target((image * 255).to(torch.uint8), torch.tensor([[20.0, 40.0, 60.0, 80.0]]), flip=True)
    assert target["boxes"].tolist() == [[100.0, 40.0, 140.0, 80.0]]
    assert flipped[0, 50, 100:140].min() == 1.0 and flipped[0, 50, 20:60].max() == 0.0


def test_labels_default_to_organism():
    image, boxes = square_frame()
    _, target = _target((image * 255).to(torch.uint8), boxes, flip=False)
    assert target["labels"].tolist() == [1]


def test_the_ema_follows_early_updates_and_smooths_late_ones():
    from embedder.detection.training import _ema

    average = _ema(0.99, ramp=100.0)
    early = average(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(1))
    late = average(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(1000))
    assert float(early) > 0.95 and float(late) == pytest.approx(0.01, abs=1e-3)
