"""Ingestion of class folders and COCO files, and every bad input the issue lists."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FISH4K, write_image
from PIL import Image

from index.errors import BadImage, InvalidInput, SourceError
from index.imaging import decode_bytes, open_image
from index.ingest.crops import CropConfig, clip_box, cut_crop


def crop_rows(ws):
    with ws.catalog.read() as con:
        return con.execute(
            "SELECT concept, group_key, crop_path, split, split_pinned FROM annotations ORDER BY annotation_id"
        ).fetchall()


# -- image decoding --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "L", "P", "RGBA", "LA", "1"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    path = write_image(tmp_path / f"x.{fmt.lower()}", mode=mode, fmt=fmt)
    image = open_image(path)
    assert image.mode == "RGB" and image.size == (64, 48)


def test_sixteen_bit_keeps_contrast(tmp_path):
    arr = np.zeros((10, 10), np.uint16)
    arr[:, 5:] = 1000  # dark 16-bit frame: must not collapse to one grey
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    rgb = np.asarray(open_image(path))
    assert rgb[0, 0, 0] == 0 and rgb[0, 9, 0] == 255


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rot.jpg"
    image.save(path, exif=exif)
    assert open_image(path).size == (20, 40)


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = write_image(tmp_path / "good.png", size=(80, 80))
    data = good.read_bytes()
    files = {
        "zero": tmp_path / "zero.png",
        "truncated": tmp_path / "truncated.png",
        "corrupt": tmp_path / "corrupt.png",
        "text": tmp_path / "text.jpg",
    }
    files["zero"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["corrupt"].write_bytes(data[:60] + bytes(len(data) - 60))
    files["text"].write_text("this is not a jpeg\n")
    return files


@pytest.mark.parametrize(
    "kind,reason",
    [
        ("zero", "empty file"),
        ("truncated", "corrupt or truncated"),
        ("corrupt", "corrupt or truncated"),
        ("text", "not an image"),
    ],
)
def test_bad_files_raise_one_line(tmp_path, kind, reason):
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(BadImage, match=reason) as info:
        open_image(path)
    assert "\n" not in str(info.value)


def test_decompression_bomb_refused(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (15000, 13000)).save(path)  # 195 Mpx, a few hundred KB on disk
    with pytest.raises(BadImage, match="pixel limit|decompression bomb"):
        open_image(path)
    with pytest.raises(BadImage, match="pixel limit"):
        decode_bytes(write_image(tmp_path / "s.png", size=(100, 100)).read_bytes(), max_pixels=5000)


# -- boxes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "box,expected",
    [
        ((10, 10, 20, 20), (10, 10, 20, 20)),
        ((-10, -5, 30, 20), (0, 0, 20, 15)),
        ((90, 40, 50, 50), (90, 40, 10, 10)),
    ],
)
def test_boxes_are_clipped(box, expected):
    assert clip_box(box, 100, 50) == pytest.approx(expected)


@pytest.mark.parametrize(
    "box,reason",
    [
        ((10, 10, 0, 5), "zero or negative"),
        ((10, 10, -4, 5), "zero or negative"),
        ((200, 10, 5, 5), "outside"),
        ((-50, 0, 20, 20), "outside"),
        ((99.5, 10, 10, 10), "under"),
        ((float("nan"), 1, 2, 2), "non-finite"),
    ],
)
def test_bad_boxes_refused(box, reason):
    with pytest.raises(InvalidInput, match=reason):
        clip_box(box, 100, 50)


def test_crop_has_context_padding_and_is_capped():
    image = Image.new("RGB", (1000, 800))
    assert cut_crop(image, (100, 100, 100, 50), CropConfig(padding=0.1)).size == (120, 60)
    assert max(cut_crop(image, (0, 0, 1000, 800), CropConfig(max_side=128)).size) == 128


# -- class folders ---------------------------------------------------------------------


def test_folders_ingest_groups_and_reingest_adds_nothing(workspace, class_folders):
    report = workspace.ingest_folders(class_folders, group_pattern=r"fish_(\d+)_")
    assert (report.images_added, report.crops_added, report.skipped) == (24, 24, [])
    rows = crop_rows(workspace)
    assert {r[0] for r in rows} == {"alpha", "beta", "gamma"}
    assert len({r[1] for r in rows}) == 12  # two frames per group
    assert all((workspace.home / r[2]).is_file() for r in rows)
    again = workspace.ingest_folders(class_folders, group_pattern=r"fish_(\d+)_")
    assert (again.images_added, again.crops_added, again.images_existing) == (0, 0, 24)
    assert len(crop_rows(workspace)) == 24


def test_folder_bad_files_are_skipped_rest_lands(workspace, class_folders):
    for path in _bad_files(class_folders / "alpha").values():
        path.rename(class_folders / "alpha" / path.name)
    (class_folders / "alpha" / "notes.txt").write_text("field notes")
    report = workspace.ingest_folders(class_folders)
    reasons = dict(report.skipped)
    assert len(report.skipped) == 5
    assert any("empty file" in r for r in reasons.values())
    assert any("not an image file name" in r for r in reasons.values())
    assert all("\n" not in r for r in reasons.values())
    assert report.crops_added == 25  # 24 + good.png


def test_folder_duplicates_are_kept_and_noted(workspace, class_folders):
    src = class_folders / "beta" / "fish_10_0.png"
    (class_folders / "beta" / "fish_10_9.png").write_bytes(src.read_bytes())
    report = workspace.ingest_folders(class_folders)
    assert report.crops_added == 25
    assert len(report.notes) == 1 and "same bytes" in report.notes[0][1]
    assert len(list((workspace.home / "images").rglob("*.png"))) == 24  # stored once


def test_species_csv_names_and_taxa(workspace, class_folders):
    (class_folders / "species.csv").write_text(
        "folder,species,genus,family\nalpha,Chromis alpha,Chromis,Pomacentridae\n"
    )
    workspace.ingest_folders(class_folders)
    with workspace.catalog.read() as con:
        names = {r[0] for r in con.execute("SELECT DISTINCT species FROM crop_meta").fetchall()}
        fam = con.execute("SELECT genus, family FROM crop_meta WHERE species = 'Chromis alpha' LIMIT 1").fetchone()
    assert names == {"Chromis alpha", "beta", "gamma"}
    assert fam == ("Chromis", "Pomacentridae")


def test_pinned_split(workspace, class_folders):
    workspace.ingest_folders(class_folders, split="test")
    assert {(r[3], r[4]) for r in crop_rows(workspace)} == {("test", True)}


@pytest.mark.parametrize(
    "make,error",
    [
        (lambda p: p, "no images found"),
        (lambda p: p / "missing", "no such folder"),
    ],
)
def test_folder_without_images(workspace, tmp_path, make, error):
    (tmp_path / "empty" / "alpha").mkdir(parents=True)
    with pytest.raises(SourceError, match=error):
        workspace.ingest_folders(make(tmp_path / "empty"))


def test_bad_group_pattern(workspace, class_folders):
    with pytest.raises(InvalidInput, match="capturing group"):
        workspace.ingest_folders(class_folders, group_pattern="fish_")


@pytest.mark.skipif(not FISH4K.is_dir(), reason="shared fish4knowledge data not present")
def test_fish4knowledge_ingests_every_crop(workspace):
    report = workspace.ingest_folders(FISH4K, group_pattern=r"fish_(\d+)_")
    assert report.crops_added == 3416 and report.skipped == []
    with workspace.catalog.read() as con:
        species, groups = con.execute(
            "SELECT count(DISTINCT concept), count(DISTINCT group_key) FROM annotations"
        ).fetchone()
    assert species == 23 and 100 < groups < 3416


# -- COCO ---------------------------------------------------------------------------------


def test_coco_ingest_with_metadata(workspace, coco_file):
    report = workspace.ingest_coco(coco_file)
    assert (report.images_added, report.crops_added, report.skipped) == (6, 12, [])
    with workspace.catalog.read() as con:
        row = con.execute(
            "SELECT depth_m, timestamp, genus, family FROM crop_meta "
            "WHERE species = 'Aurelia aurita' ORDER BY depth_m DESC LIMIT 1"
        ).fetchone()
    assert row[0] == 500.0 and row[1].year == 2025 and row[2:] == ("Aurelia", "Ulmaridae")
    assert workspace.ingest_coco(coco_file).crops_added == 0


def test_coco_bad_entries_skipped(workspace, coco_file):
    data = json.loads(coco_file.read_text())
    data["annotations"] += [
        {"id": 90, "image_id": 0, "category_id": 7, "bbox": [1, 1, 5, 5]},  # unknown category
        {"id": 91, "image_id": 0, "category_id": 1, "bbox": [500, 500, 5, 5]},  # outside
        {"id": 92, "image_id": 0, "category_id": 1, "bbox": [5, 5, -3, 5]},  # negative
        {"id": 93, "image_id": 0, "category_id": 1, "bbox": [5, 5, 0, 0]},  # zero
        {"id": 94, "image_id": 0, "category_id": 1, "bbox": "oops"},  # malformed
        {"id": 95, "image_id": 42, "category_id": 1, "bbox": [1, 1, 5, 5]},  # no such image
    ]
    data["images"].append({"id": 7, "file_name": "frames/missing.png"})
    coco_file.write_text(json.dumps(data))
    report = workspace.ingest_coco(coco_file)
    assert report.crops_added == 12
    assert len(report.skipped) == 7
    text = " ".join(r for _, r in report.skipped)
    for word in ("unknown category", "outside", "zero or negative", "bbox must be", "not in 'images'", "not found"):
        assert word in text


@pytest.mark.parametrize(
    "content,error",
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "JSON object"),
        ('{"images": [], "annotations": []}', "missing list"),
    ],
)
def test_coco_unusable_file(workspace, tmp_path, content, error):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InvalidInput, match=error):
        workspace.ingest_coco(path)


def test_coco_corrupt_frame_skipped(workspace, coco_file):
    (coco_file.parent / "frames" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    report = workspace.ingest_coco(coco_file)
    assert report.images_added == 5 and report.crops_added == 10
    assert report.skipped[0][0] == "3.png (id 3)" and "corrupt" in report.skipped[0][1]


# -- interrupted ingest ---------------------------------------------------------------

KILL_SCRIPT = """
import sys
from app.workspace import Workspace
import index.ingest.ingest as ingest
ws = Workspace(sys.argv[1])
flush = ingest._flush
def slow_flush(*a, **k):
    flush(*a, **k)
    print("flushed", flush=True)
    import time; time.sleep(30)
ingest._flush = slow_flush
ws.ingest_folders(sys.argv[2])
"""


def test_ingest_killed_half_way_then_rerun(tmp_path, class_folders):
    from app.workspace import Workspace

    for i in range(200):  # enough frames for two chunks
        write_image(class_folders / "delta" / f"fish_9{i}_0.png", size=(24, 24), seed=1000 + i)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "h"), str(class_folders)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "flushed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ws = Workspace(tmp_path / "h")
    assert 0 < len(crop_rows(ws)) < 224
    report = ws.ingest_folders(class_folders)
    rows = crop_rows(ws)
    assert len(rows) == 224 and report.skipped == []
    assert all(r[2] and (ws.home / r[2]).is_file() for r in rows)
