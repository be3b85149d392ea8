"""The class-agnostic detector: build, save/load round trip, and a tiny detector judged by IoU on drawn frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from embedder.detection.model import DetectorConfig, build_detector, load_detector, save_detector
from embedder.detection.predict import detect_images
from index.errors import ModelError
from tests.conftest import drawn_frame as shared_drawn_frame


def drawn_frame(rng: np.random.Generator, size: int = 128) -> tuple[Image.Image, np.ndarray]:
    """One or two bright discs on dark noise (``tests.conftest.drawn_frame``)."""
    return shared_drawn_frame(rng, size, discs=(1, 3), radii=(10, 18))


@pytest.mark.parametrize("arch", ["fcos", "retinanet"])
def test_round_trip_gives_identical_boxes(tmp_path, arch):
    config = DetectorConfig(arch=arch, backbone="efficientnet_lite0", image_size=128, score_thresh=0.0)
    torch.manual_seed(0)
    model = build_detector(config, pretrained=False).eval()
    saved = save_detector(model, config, tmp_path / "det")
    loaded, read = load_detector(tmp_path / "det")
    assert read == saved and saved.weights_sha256
    frame, _ = drawn_frame(np.random.default_rng(0))
    a = detect_images(model, config, [frame], min_score=0.0)[0]
    b = detect_images(loaded, read, [frame], min_score=0.0)[0]
    assert len(a.boxes) and np.allclose(a.boxes, b.boxes) and np.allclose(a.scores, b.scores)


def test_changed_weights_are_refused(tmp_path):
    config = DetectorConfig(image_size=128)
    save_detector(build_detector(config, pretrained=False), config, tmp_path / "det")
    with open(tmp_path / "det" / "weights.safetensors", "r+b") as fh:
        fh.seek(-8, 2)
        fh.write(b"\0" * 8)
    with pytest.raises(ModelError, match="sha256"):
        load_detector(tmp_path / "det")


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ModelError, match="fcos, retinanet"):
        build_detector(DetectorConfig(arch="yolo"), pretrained=False)


def test_tiny_detector_finds_drawn_organisms_by_iou():
    """Trained for seconds on drawn frames; every known box on new frames must be found at IoU >= 0.5.

    Boxes shifted, scaled wrongly or not returned (a broken target conversion, a
    wrong rescale to frame pixels) fail the IoU check."""
    from torchvision.ops import box_iou

    from embedder.detection.training import DetectorTrainConfig, train_detector

    rng = np.random.default_rng(1)
    frames = [drawn_frame(rng) for _ in range(24)]
    config = DetectorConfig(image_size=128, fpn_channels=32)
    model, result = train_detector(frames, config, DetectorTrainConfig(epochs=6, batch_size=4, lr=2e-3, warmup_steps=5))
    assert result.history[-1]["classification"] < result.history[0]["classification"]
    tests = [drawn_frame(rng) for _ in range(6)]
    found = detect_images(model, config, [im for im, _ in tests], min_score=0.2)
    hits = total = 0
    for (_, truth), pred in zip(tests, found, strict=True):
        t = torch.tensor(truth)
        p = torch.tensor(pred.boxes)
        total += len(t)
        if len(p):
            iou = box_iou(torch.cat([t[:, :2], t[:, :2] + t[:, 2:]], 1), torch.cat([p[:, :2], p[:, :2] + p[:, 2:]], 1))
            hits += int((iou.max(1).values >= 0.5).sum())
    assert hits / total >= 0.8, (hits, total)
