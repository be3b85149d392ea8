"""Each detector's boxes are cut at its own architecture's score when no --min-score is given (issue 27):
YOLOX-Nano's scores (objectness x class) run lower than FCOS's, so one cut for both drops most of YOLOX's
organisms. The detector runs as a stand-in that returns boxes at fixed scores; what is checked is which of
them each command path keeps."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from app.workspace.frames import detector as detector_module
from app.workspace.frames.detector import LoadedDetector, detect_frames

SCORES = np.array([0.6, 0.25, 0.12, 0.05], dtype=np.float32)


@pytest.fixture
def frame(tmp_path, monkeypatch):
    path = tmp_path / "frame.png"
    Image.new("RGB", (96, 64), (20, 60, 90)).save(path)

    def predict_all(model, config, images, device, min_score):  # the detector: four boxes, scores above
        keep = SCORES >= min_score
        boxes = np.tile(np.array([[4.0, 4.0, 20.0, 20.0]], dtype=np.float32), (len(SCORES), 1))
        return [SimpleNamespace(boxes=boxes[keep], scores=SCORES[keep])]

    monkeypatch.setattr(detector_module, "predict_all", predict_all)
    return path


def loaded(arch: str) -> LoadedDetector:
    return LoadedDetector("d", None, None, SimpleNamespace(arch=arch), "cpu")


@pytest.mark.parametrize(("arch", "kept"), [("yolox-nano", 3), ("fcos", 1), ("retinanet", 1)])
def test_no_min_score_keeps_the_boxes_above_the_architectures_own_cut(frame, arch, kept):
    run = detect_frames(loaded(arch), [frame])
    assert len(run.frames[0].boxes) == kept
    assert run.min_score == {"yolox-nano": 0.1, "fcos": 0.3, "retinanet": 0.3}[arch]


def test_a_min_score_given_wins_over_the_architectures(frame):
    assert len(detect_frames(loaded("yolox-nano"), [frame], min_score=0.5).frames[0].boxes) == 1
    assert len(detect_frames(loaded("fcos"), [frame], min_score=0.0).frames[0].boxes) == 4
