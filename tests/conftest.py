"""Shared fixtures: tiny images and workspaces built in tmp_path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]  # conftest.py sits in tests/

#: The test-only setting of the general space (app/workspace/spaces.py, GENERAL_SPACE): every home the tests
#: build, and every CLI run they start, embeds the tuned space only unless a test asks for the general space
#: (``general=True``, ``--general-space``, or the variable unset as tests/app/workspace/test_general_default.py
#: does to check the default users get, on): a real Lite0 at 160 px per crop would cost the suite minutes.
os.environ["OCEANID_GENERAL_SPACE"] = "0"
FISH4K = REPO.parent / "shared" / "data" / "fish4knowledge"


def write_image(path: Path, size=(64, 48), mode="RGB", seed=0, fmt=None) -> Path:
    """A small noisy image of a given mode, saved to path."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(arr, "RGB")
    if mode == "I;16":
        image = Image.fromarray((rng.integers(0, 65535, (size[1], size[0]))).astype(np.uint16))
    elif mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def workspace(home: Path):
    from app.workspace import Workspace

    return Workspace(home)


@pytest.fixture
def class_folders(tmp_path: Path) -> Path:
    """Three classes, four groups each of two near-identical frames."""
    root = tmp_path / "folders"
    for c, name in enumerate(["alpha", "beta", "gamma"]):
        for g in range(4):
            for f in range(2):
                write_image(root / name / f"fish_{c}{g}_{f}.png", seed=100 * c + 10 * g + f)
    return root


def write_coco(folder: Path, images: list[dict], annotations: list[dict], categories: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


@pytest.fixture
def coco_file(tmp_path: Path) -> Path:
    folder = tmp_path / "coco"
    images, annotations = [], []
    for i in range(6):
        write_image(folder / "frames" / f"{i}.png", size=(120, 90), seed=i)
        images.append(
            {
                "id": i,
                "file_name": f"frames/{i}.png",
                "width": 120,
                "height": 90,
                "depth_m": 100.0 * i,
                "timestamp": f"202{i}-01-02T03:04:05",
            }
        )
        annotations.append({"id": 2 * i, "image_id": i, "category_id": 1, "bbox": [10, 10, 30, 20]})
        annotations.append({"id": 2 * i + 1, "image_id": i, "category_id": 2, "bbox": [60, 40, 40, 30]})
    categories = [
        {"id": 1, "name": "Aurelia aurita", "supercategory": "Ulmaridae", "genus": "Aurelia"},
        {"id": 2, "name": "Asterias rubens", "supercategory": "Asteriidae"},
    ]
    return write_coco(folder, images, annotations, categories)


def build_tiny_workspace(home: Path, frames: int = 48, epochs: int = 2):
    """THE tiny trained workspace every test shares: the synthetic reef (8 species, 2 held
    out, ``frames`` frames), split, a tiny 32-d encoder trained ``epochs`` epochs, embedded,
    one index generation and an evaluation report; built with the real Workspace methods."""
    from app.workspace import SplitConfig, TrainConfig, Workspace

    ws = Workspace(home)
    ws.ingest_synthetic(species=8, holdout=2, frames=frames, seed=1)
    ws.split(SplitConfig(seed=0))
    ws.train(
        TrainConfig(
            backbone="tiny",
            weights="none",
            epochs=epochs,
            image_size=32,
            dim=32,
            batch_p=4,
            batch_k=4,
            workers=0,
            seed=0,
            device="cpu",
        ),
        model="tiny",
    )
    ws.embed("tiny", device="cpu", progress=False, general=False)  # the tuned space only (see above)
    ws.index_build("tiny")
    ws.evaluate()
    return ws


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory) -> Path:
    """The tiny trained workspace (see build_tiny_workspace), built once; copy it before writing."""
    home = tmp_path_factory.mktemp("tiny") / "home"
    build_tiny_workspace(home)
    return home


@pytest.fixture
def tiny_ws(tiny_home, tmp_path):
    """A private copy of the tiny workspace that a test may change."""
    import shutil

    from app.workspace import Workspace

    shutil.copytree(tiny_home, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


CROP_META = (
    "CREATE TABLE crop_meta (annotation_id INTEGER, species VARCHAR, genus VARCHAR, family VARCHAR,"
    " depth_m DOUBLE, timestamp TIMESTAMP, latitude DOUBLE, longitude DOUBLE, split VARCHAR, source VARCHAR,"
    ' label_rank VARCHAR, kingdom VARCHAR, phylum VARCHAR, "class" VARCHAR, "order" VARCHAR,'
    " subfamily VARCHAR, origin VARCHAR DEFAULT 'truth')"
)  # the rank columns of the catalog's view (index/catalog/catalog.py), empty here


@pytest.fixture(scope="module")
def crop_meta():
    """``crop_meta(rows)`` -> an in-memory DuckDB connection holding a ``crop_meta`` table (the
    catalog view the filter grammar compiles against) with those rows; closed after the module."""
    opened = []

    import duckdb

    def make(rows):
        con = duckdb.connect(":memory:")
        con.execute(CROP_META)
        con.executemany(
            "INSERT INTO crop_meta (annotation_id, species, genus, family, depth_m, timestamp, latitude, "
            "longitude, split, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        opened.append(con)
        return con

    yield make
    for con in opened:
        con.close()


# The suite runs alone on the machine (under the CPU lock): every core, not the
# half an oceanid process takes by default (app.workspace.threads).
os.environ.setdefault("OCEANID_THREADS", str(len(os.sched_getaffinity(0))))


def drawn_frame(
    rng: np.random.Generator, size: int = 128, discs: tuple[int, int] = (2, 4), radii: tuple[int, int] = (10, 16)
) -> tuple[Image.Image, np.ndarray]:
    """Dark noisy water with ``discs`` (low, high-exclusive) bright discs of radius in ``radii``;
    returns the frame and their x, y, w, h boxes. The one drawer of detector test frames."""
    arr = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
    boxes = []
    for _ in range(int(rng.integers(*discs))):
        r = int(rng.integers(*radii))
        cx, cy = (int(v) for v in rng.integers(r + 2, size - r - 2, 2))
        yy, xx = np.ogrid[:size, :size]
        arr[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (230, 200, 60)
        boxes.append((cx - r, cy - r, 2 * r + 1, 2 * r + 1))
    return Image.fromarray(arr), np.asarray(boxes, np.float32)


@pytest.fixture(scope="session")
def drawn_detector(tmp_path_factory) -> Path:
    """A tiny FCOS detector trained for seconds on drawn disc frames, saved as a model folder
    (``drawn_frame`` draws frames it finds discs in)."""
    from embedder.detection.model import DetectorConfig, save_detector
    from embedder.detection.training import DetectorTrainConfig, train_detector

    rng = np.random.default_rng(1)
    config = DetectorConfig(image_size=128, fpn_channels=64)  # 32: GroupNorm fails on 1x1 P7 of one frame
    model, _ = train_detector(
        [drawn_frame(rng) for _ in range(24)],
        config,
        DetectorTrainConfig(epochs=6, batch_size=4, lr=2e-3, warmup_steps=5),
    )
    folder = tmp_path_factory.mktemp("detector") / "detector-drawn"
    save_detector(model, config, folder)
    return folder


@pytest.fixture(scope="session")
def drawn_frames(tmp_path_factory) -> list[Path]:
    """Three drawn disc frames (PNG files) the drawn detector was not trained on."""
    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("drawn")
    out = []
    for n in range(3):
        image, _ = drawn_frame(rng)
        image.save(folder / f"disc_{n}.png")
        out.append(folder / f"disc_{n}.png")
    return out
