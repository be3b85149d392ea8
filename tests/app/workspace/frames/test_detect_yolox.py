"""`oceanid detect train --arch yolox-nano`: the COCO YOLOX-Nano fine-tuned through the product commands
on drawn YOLO frames (bright discs on dark noise, ``tests.conftest.drawn_frame``), then `detect` and
`detect evaluate` with it.

Needs the COCO weights offline (the weights cache, ``$OCEANID_WEIGHTS`` or ``~/.cache/oceanid/weights``);
skipped when they are not there (never fetched by a test).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from app.cli import app
from embedder.detection.yolox_weights import yolox_nano_onnx
from index.errors import ModelError
from tests.conftest import drawn_frame

runner = CliRunner()


def write_yolo(root: Path, n_train: int = 24, n_val: int = 6, seed: int = 1) -> Path:
    """A YOLO layout of drawn 128 px frames (train / valid), one class."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("valid", n_val)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(n):
            frame, boxes = drawn_frame(rng, 128, discs=(1, 3), radii=(10, 18))
            frame.save(root / split / "images" / f"f{i}.png")
            lines = [
                f"0 {(x + w / 2) / 128:.5f} {(y + h / 2) / 128:.5f} {w / 128:.5f} {h / 128:.5f}" for x, y, w, h in boxes
            ]
            (root / split / "labels" / f"f{i}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnames: ['disc']\n")
    return root / "data.yaml"


def hits(truth: np.ndarray, found: list) -> int:
    """Truth boxes (x, y, w, h) with a found box at IoU >= 0.5."""
    from torchvision.ops import box_iou

    if not len(found):
        return 0
    t, p = torch.as_tensor(truth, dtype=torch.float32), torch.as_tensor(found, dtype=torch.float32)
    iou = box_iou(torch.cat([t[:, :2], t[:, :2] + t[:, 2:]], 1), torch.cat([p[:, :2], p[:, :2] + p[:, 2:]], 1))
    return int((iou.max(1).values >= 0.5).sum())


pytestmark = pytest.mark.slow  # two conversions and a short training: ~30 s on the shared machine


@pytest.fixture(scope="module")
def yolox_home(tmp_path_factory) -> Path:
    try:
        yolox_nano_onnx(download_wheel=None, download_url=None, progress=lambda _: None)
    except ModelError as exc:
        pytest.skip(f"no offline YOLOX-Nano weights: {exc}")
    base = tmp_path_factory.mktemp("yolox")
    data = write_yolo(base / "yolo")
    home = base / "home"
    assert runner.invoke(app, ["--home", str(home), "ingest", "yolo", str(data)]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "--home",
            str(home),
            "--threads",
            "1",
            "detect",
            "train",
            "--arch",
            "yolox-nano",
            "--image-size",
            "128",
            "--epochs",
            "5",
            "--lr",
            "2e-3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return home


def test_training_records_a_yolox_detector(yolox_home):
    out = runner.invoke(app, ["--home", str(yolox_home), "detect", "list", "--json"])
    rows = json.loads(out.stdout)
    assert [r["arch"] for r in rows["detectors"] if r["detector_id"] == "detector-yolox-nano-128"] == ["yolox-nano"]
    config = json.loads((yolox_home / "models" / "detector-yolox-nano-128" / "config.json").read_text())
    assert config["arch"] == "yolox-nano" and config["weights_sha256"]


def test_the_fine_tuned_detector_finds_the_discs(yolox_home):
    out = runner.invoke(app, ["--home", str(yolox_home), "detect", "evaluate", "--split", "val", "--json"])
    assert out.exit_code == 0, out.output
    figures = json.loads(out.stdout)
    assert figures["recall50"] >= 0.8 and figures["map50"] >= 0.5  # a broken head or decode scores ~0


def test_detect_prints_boxes_over_the_discs(yolox_home, tmp_path):
    frame, boxes = drawn_frame(np.random.default_rng(99), 128, discs=(1, 3), radii=(10, 18))
    frame.save(tmp_path / "f.png")
    out = runner.invoke(app, ["--home", str(yolox_home), "detect", str(tmp_path / "f.png"), "--json"])
    assert out.exit_code == 0, out.output
    found = json.loads(out.stdout)["frames"][0]["boxes"]
    assert hits(boxes, found) == len(boxes)
