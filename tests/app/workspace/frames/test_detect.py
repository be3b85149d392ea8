"""`oceanid detect` train | list | evaluate | FRAME...: a tiny detector trained on drawn YOLO frames.

One home (module scope) is built with the real commands: drawn frames (bright discs on dark
noise) in a YOLO layout with train / valid folders, `ingest yolo`, `detect train`. The tests
then check the boxes by IoU against the known discs, the catalog listing, pycocotools'
reading of --coco, evaluate's figures against a hand-checked case, and each bad frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from app.cli import app
from tests.conftest import drawn_frame

runner = CliRunner()


def drawn(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Dark noise with one or two bright discs (``tests.conftest.drawn_frame``): pixels and x, y, w, h boxes."""
    frame, boxes = drawn_frame(rng, size, discs=(1, 3), radii=(10, 18))
    return np.asarray(frame), [tuple(int(v) for v in b) for b in boxes]


def write_yolo(root: Path, n_train: int = 24, n_val: int = 6, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("valid", n_val)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(n):
            arr, boxes = drawn(rng)
            Image.fromarray(arr).save(root / split / "images" / f"f{i}.png")
            lines = [
                f"{i % 2} {(x + w / 2) / 128:.5f} {(y + h / 2) / 128:.5f} {w / 128:.5f} {h / 128:.5f}"
                for x, y, w, h in boxes
            ]
            (root / split / "labels" / f"f{i}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnames: ['disc', 'ball']\n")
    return root / "data.yaml"


@pytest.fixture(scope="module")
def det_home(tmp_path_factory) -> Path:
    from app.workspace import Workspace

    base = tmp_path_factory.mktemp("detect")
    data = write_yolo(base / "yolo")
    ws = Workspace(base / "home")
    ws.ingest_yolo(data)
    ws.detect_train(arch="fcos", image_size=128, epochs=6, batch_size=4, lr=2e-3, fpn_channels=64)
    return base / "home"


def cli(home: Path, *args: str):
    return runner.invoke(app, ["--home", str(home), *args])


def iou_hits(truth, found) -> int:
    import torch
    from torchvision.ops import box_iou

    if not len(found):
        return 0
    t, p = torch.tensor(truth, dtype=torch.float32), torch.tensor(found, dtype=torch.float32)
    iou = box_iou(torch.cat([t[:, :2], t[:, :2] + t[:, 2:]], 1), torch.cat([p[:, :2], p[:, :2] + p[:, 2:]], 1))
    return int((iou.max(1).values >= 0.5).sum())


def test_detect_prints_boxes_that_match_the_drawn_discs(det_home, tmp_path):
    rng = np.random.default_rng(99)
    files, truth = [], []
    for i in range(5):
        arr, boxes = drawn(rng)
        Image.fromarray(arr).save(tmp_path / f"new{i}.png")
        files.append(tmp_path / f"new{i}.png")
        truth.append(boxes)
    result = cli(det_home, "detect", str(tmp_path), "--json", "--min-score", "0.2")
    assert result.exit_code == 0, result.output
    frames = json.loads(result.stdout)["frames"]
    assert [Path(f["name"]).name for f in frames] == [f.name for f in files]
    hits = sum(iou_hits(t, f["boxes"]) for t, f in zip(truth, frames, strict=False))
    assert hits / sum(len(t) for t in truth) >= 0.8, frames
    assert all(f["scores"] == sorted(f["scores"], reverse=True) for f in frames)
    table = cli(det_home, "detect", str(files[0]))
    assert table.exit_code == 0 and "organism(s) in 128x128" in table.stdout and "5 frames" not in table.stdout


def test_train_lists_the_detector_in_the_catalog(det_home):
    result = cli(det_home, "detect", "list", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    (record,) = listing["detectors"]
    assert listing["current"] == record["detector_id"] == "detector-fcos-128"
    assert record["train_frames"] == 24 and record["val_frames"] == 6 and record["epochs"] == 6
    folder = det_home / "models" / record["detector_id"]
    assert (folder / "config.json").is_file() and (folder / "weights.safetensors").is_file()
    assert not (folder / "checkpoint.pt").exists()  # finished: nothing left to resume
    history = json.loads((folder / "training.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6] and "val_map50" in history[0]
    best = max(history, key=lambda h: h["val_map50"])  # the epoch kept is the one with the best val mAP@0.5
    assert record["best_epoch"] == best["epoch"] and record["val_map50"] == pytest.approx(best["val_map50"])
    assert record["val_map50"] > 0.5  # it found the discs


def test_coco_output_is_read_by_pycocotools(det_home, tmp_path):
    from pycocotools.coco import COCO

    rng = np.random.default_rng(5)
    for i in range(3):
        Image.fromarray(drawn(rng)[0]).save(tmp_path / f"c{i}.png")
    out = tmp_path / "boxes.json"
    result = cli(det_home, "detect", *(str(tmp_path / f"c{i}.png") for i in range(3)), "--coco", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    gt = COCO(str(out))
    assert sorted(Path(im["file_name"]).name for im in gt.dataset["images"]) == ["c0.png", "c1.png", "c2.png"]
    dets = gt.loadRes(doc["annotations"])
    assert len(dets.getAnnIds()) == len(doc["annotations"]) > 0
    assert all(set(a) >= {"image_id", "category_id", "bbox", "score"} for a in doc["annotations"])


def test_evaluate_reports_pycocotools_figures(det_home):
    result = cli(det_home, "detect", "evaluate", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"] == "val" and report["frames"] == 6 and report["truth_boxes"] >= 6
    assert report["map50"] >= 0.5 and report["recall50"] >= report["map50"] - 1e-6
    assert 0 < report["map"] <= report["map50"]
    assert cli(det_home, "detect", "evaluate", "--split", "nope").exit_code == 1


def test_box_metrics_match_a_hand_checked_case():
    """pycocotools on two frames: one box found exactly, one missed, one false positive scored lower."""
    from index.metrics.boxes import box_metrics

    truth = [np.array([[10, 10, 20, 20]], np.float32), np.array([[50, 50, 30, 30]], np.float32)]
    boxes = [np.array([[10, 10, 20, 20], [80, 0, 10, 10]], np.float32), np.zeros((0, 4), np.float32)]
    scores = [np.array([0.9, 0.5], np.float32), np.zeros(0, np.float32)]
    m = box_metrics(truth, [(100, 100), (100, 100)], boxes, scores)
    assert m.recall50 == pytest.approx(0.5)
    assert m.map50 == pytest.approx(0.5, abs=0.01)  # precision 1 up to recall 0.5, nothing after
    shifted = box_metrics(
        truth,
        [(100, 100)] * 2,
        [np.array([[25, 25, 20, 20]], np.float32), boxes[1]],
        [np.array([0.9], np.float32), scores[1]],
    )
    assert shifted.recall50 == 0.0 and shifted.map50 == 0.0  # IoU 25/775: not a match


def test_bad_frames_are_one_line_each_and_the_rest_go_on(det_home, tmp_path):
    rng = np.random.default_rng(7)
    good = tmp_path / "good.png"
    Image.fromarray(drawn(rng)[0]).save(good)
    empty = tmp_path / "empty.png"  # water only: an empty result, not an error
    Image.fromarray(rng.integers(0, 40, (128, 128, 3)).astype(np.uint8)).save(empty)
    tiny = tmp_path / "tiny.png"
    Image.fromarray(drawn(rng)[0][:20, :20]).save(tiny)
    gray = tmp_path / "gray.png"
    Image.fromarray(drawn(rng)[0]).convert("L").save(gray)
    deep = tmp_path / "deep.png"
    Image.fromarray(drawn(rng)[0][..., 0].astype(np.uint16) * 257).save(deep)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    files = [good, empty, tiny, gray, deep, broken]
    result = cli(det_home, "detect", *map(str, files), "--json")
    assert result.exit_code == 0, result.output
    frames = {Path(f["name"]).name: f for f in json.loads(result.stdout)["frames"]}
    assert frames["good.png"]["boxes"] and frames["good.png"]["error"] is None
    assert frames["empty.png"]["boxes"] == [] and frames["empty.png"]["error"] is None
    assert "too small" in frames["tiny.png"]["error"] and not frames["tiny.png"]["boxes"]
    for name, word in (("gray.png", "grayscale"), ("deep.png", "16-bit")):  # converted, detected, said so
        assert frames[name]["error"] is None and frames[name]["width"] == 128 and word in frames[name]["warning"]
    assert "not an image" in frames["broken.png"]["error"]
    lines = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert len(lines) == 2
    only_bad = cli(det_home, "detect", str(tiny), str(broken))
    assert only_bad.exit_code == 1 and len(only_bad.stderr.strip().splitlines()) == 2


def test_over_the_pixel_limit_is_one_line(det_home, tmp_path, monkeypatch):
    import index.imaging

    big = tmp_path / "big.png"
    Image.fromarray(drawn(np.random.default_rng(3))[0]).save(big)
    monkeypatch.setattr(index.imaging, "MAX_PIXELS", 100 * 100)
    monkeypatch.setattr(index.imaging.open_image, "__defaults__", (100 * 100,))
    result = cli(det_home, "detect", str(big))
    assert result.exit_code == 1 and "pixel limit" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_train_stops_and_resumes_to_the_same_epochs(tmp_path):
    from app.workspace import Workspace

    data = write_yolo(tmp_path / "yolo", n_train=8, n_val=2)
    ws = Workspace(tmp_path / "home")
    ws.ingest_yolo(data)
    first = ws.detect_train(arch="fcos", image_size=128, epochs=2, max_epochs_now=1, fpn_channels=64, detector="d")
    assert not first.finished and first.epochs_done == 1
    assert (tmp_path / "home" / "models" / "d" / "checkpoint.pt").is_file()
    # no --arch, no --detector: the current detector (the stopped one) resumes with its recorded architecture
    # (the default, YOLOX-Nano, would look for detector-yolox-nano-416 and could not load an FCOS checkpoint)
    done = ws.detect_train(image_size=128, epochs=2, resume=True, fpn_channels=64)
    assert done.detector_id == "d" and done.arch == "fcos"
    assert done.finished and done.epochs_done == 2 and [h["epoch"] for h in done.history] == [1, 2]
    assert done.history[0] == first.history[0]
    again = cli(tmp_path / "home", "detect", "train", "--detector", "d", "--resume", "--image-size", "128")
    assert again.exit_code == 1 and "nothing to resume" in again.stderr


def test_bad_training_settings_and_no_frames_are_one_line(tmp_path, class_folders):
    home = tmp_path / "h"
    assert "no catalog" in cli(home, "detect", "train").stderr
    assert cli(home, "detect", "train", "--arch", "yolo").exit_code == 1
    assert "multiple of 32" in cli(home, "detect", "train", "--image-size", "100").stderr
    nothing = cli(home, "detect", str(class_folders))
    assert nothing.exit_code == 1 and "no detector" in nothing.stderr
