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


def test_the_explorers_slider_starts_at_the_current_detectors_own_cut(tmp_path, class_folders):
    from app.workspace import Workspace
    from index.catalog.detectors import DetectorRecord, register_detector

    ws = Workspace(tmp_path / "home")
    ws.ingest_folders(class_folders)
    assert ws.detector_min_score() == 0.3  # no detector: FCOS's
    for detector_id, arch, cut in (("y", "yolox-nano", 0.1), ("f", "fcos", 0.3)):
        record = DetectorRecord(detector_id, "h", arch, 416, 1, 1, 1, 1, 0.5, 1.0, None)
        register_detector(ws.catalog, record)
        ws.catalog.set_current_detector(detector_id)
        assert ws.detector_min_score() == cut
