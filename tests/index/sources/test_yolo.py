"""`oceanid ingest yolo`: the Ultralytics / Roboflow layout, on real aquarium frames and hand-made bad cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO, write_image
from typer.testing import CliRunner

from index.errors import InvalidInput, SourceError
from index.sources.yolo import label_path, parse_label_line, read_yolo, resolve_entry

AQUARIUM = REPO.parent / "shared" / "data" / "aquarium"
NAMES = {0: "fish", 1: "jellyfish"}


def roboflow_copy(tmp_path: Path, n_train: int = 3, n_val: int = 2) -> Path:
    """A few real aquarium frames laid out as Roboflow exports them (``../train/images``)."""
    if not AQUARIUM.is_dir():
        pytest.skip("shared aquarium data not present")
    root = tmp_path / "aq"
    for split, folder, n in (("train", "train", n_train), ("valid", "valid", n_val)):
        images = sorted((AQUARIUM / folder / "images").iterdir())[:n]
        for image in images:
            for kind, src in (("images", image), ("labels", label_path(image))):
                (root / split / kind).mkdir(parents=True, exist_ok=True)
                shutil.copy(src, root / split / kind / src.name)
    shutil.copy(AQUARIUM / "data.yaml", root / "data.yaml")
    return root


def boxes_by_split(plan):
    return {r.source_id.split("::")[1]: [b.split for b in r.boxes] for r in plan.records}


def test_real_roboflow_layout(tmp_path):
    root = roboflow_copy(tmp_path)
    plan = read_yolo(root / "data.yaml")
    assert len(plan.records) == 5 and not plan.skipped
    # '../train/images' is resolved like Ultralytics (the '../' dropped), and the report says so
    assert [text for _, text in plan.notes] == [f"read {root / 'train/images'}", f"read {root / 'valid/images'}"]
    splits = {r.source_id.split("::")[1].split("/")[0]: {b.split for b in r.boxes} for r in plan.records}
    assert splits == {"train": {"train"}, "valid": {"val"}}
    assert {t.concept for t in plan.taxa} == {"fish", "jellyfish", "penguin", "puffin", "shark", "starfish", "stingray"}


def test_boxes_are_pixels_of_the_upright_frame(tmp_path):
    root = tmp_path / "d"
    write_image(root / "images" / "a.png", size=(200, 100))
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.3 0.1 0.3 0.5\n")
    (root / "data.yaml").write_text("train: images\nnames: {0: fish, 1: jellyfish}\n")
    (record,) = read_yolo(root / "data.yaml").records
    box, poly = record.boxes
    assert (box.concept, box.x, box.y, box.w, box.h) == pytest.approx(("jellyfish", 80, 30, 40, 40))
    assert (poly.concept, poly.x, poly.y, poly.w, poly.h) == pytest.approx(("fish", 20, 10, 40, 40))


def test_bad_lines_and_missing_images_reported_one_line_each(tmp_path):
    root = tmp_path / "d"
    for name in ("a", "b", "c"):
        write_image(root / "train" / "images" / f"{name}.jpg", size=(100, 100))
    labels = root / "train" / "labels"
    labels.mkdir(parents=True)
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\nfish 1 2 3 4\n0 0.5 0.5\n0 1.5 0.5 0.2 0.2\n")
    (labels / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # no image beside it
    (labels / "c.txt").write_text("")  # an empty label file: a frame with no organism
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnames: [fish, jellyfish]\n")
    plan = read_yolo(root / "data.yaml")
    by_name = {r.source_id.split("::")[1]: len(r.boxes) for r in plan.records}
    assert by_name == {"train/images/a.jpg": 1, "train/images/b.jpg": 0, "train/images/c.jpg": 0}
    reasons = dict(plan.skipped)
    assert "outside names" in reasons["train/labels/a.txt line 2"]
    assert "not numbers" in reasons["train/labels/a.txt line 3"]
    assert "got 3 values" in reasons["train/labels/a.txt line 4"]
    assert "normalised" in reasons["train/labels/a.txt line 5"]
    assert "image missing" in reasons["train/labels/ghost.txt"]
    assert any("split folder not found" in r for r in reasons.values())  # the val folder does not exist
    assert all("\n" not in r for r in reasons.values())


@pytest.mark.parametrize(
    "text, error",
    [
        ("names: [a\ntrain: x", "malformed YAML"),
        ("- just\n- a list\n", "is a mapping"),
        ("train: images\n", "no 'names'"),
        ("train: images\nnc: 3\nnames: [a, b]\n", "nc is 3"),
        ("names: [a]\n", "no train / val / test"),
    ],
)
def test_unusable_yaml_is_one_line(tmp_path, text, error):
    (tmp_path / "data.yaml").write_text(text)
    with pytest.raises(InvalidInput, match=error) as info:
        read_yolo(tmp_path / "data.yaml")
    assert "\n" not in str(info.value)


def test_missing_yaml(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        read_yolo(tmp_path / "nope.yaml")


def test_resolution_prefers_the_folder_that_exists(tmp_path):
    (tmp_path / "root" / "train").mkdir(parents=True)
    (tmp_path / "train").mkdir()
    # Ultralytics keeps root/../train when it exists, and only then drops the '../'
    assert resolve_entry(tmp_path / "root", "../train") == tmp_path / "train"
    shutil.rmtree(tmp_path / "train")
    assert resolve_entry(tmp_path / "root", "../train") == tmp_path / "root" / "train"


@pytest.mark.parametrize("line", ["0 nan 0.5 0.1 0.1", "0.5 0.5 0.5 0.1 0.1", "-1 0.5 0.5 0.1 0.1", "0 0.5 0.5 0 0.1"])
def test_label_lines_refused(line):
    with pytest.raises(InvalidInput):
        parse_label_line(line, NAMES, 100, 100)


def test_cli_ingest_yolo_real_frames(tmp_path):
    from app.cli import app

    root = roboflow_copy(tmp_path, 2, 1)
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "ingest", "yolo", str(root / "data.yaml")])
    assert result.exit_code == 0, result.output
    assert "yolo: 3 images added" in result.output
    assert f"train: ../train/images -> read {root / 'train/images'}" in result.output
    again = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "ingest", "yolo", str(root / "data.yaml")])
    assert "0 images added (3 already there)" in again.output and "0 crops added" in again.output
    broken = tmp_path / "bad.yaml"
    broken.write_text("names: [a\n")
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "ingest", "yolo", str(broken)])
    assert result.exit_code == 1 and "malformed YAML" in result.output


def test_cli_ingest_yolo_names_its_source_and_shows_notes_once(tmp_path):
    """`ingest yolo` takes --source-name and --show-notes like coco and folders."""
    import json

    from app.cli import app

    root = roboflow_copy(tmp_path, 1, 1)
    home = ["--home", str(tmp_path / "home")]
    result = CliRunner().invoke(
        app, [*home, "ingest", "yolo", str(root / "data.yaml"), "--source-name", "aquarium-2024", "--show-notes"]
    )
    assert result.exit_code == 0, result.output
    assert "aquarium-2024: 2 images added" in result.output
    assert result.output.count("train: ../train/images") == 1  # the folder note, not twice
    stats = json.loads(CliRunner().invoke(app, [*home, "stats", "--json"]).stdout)
    assert "aquarium-2024" in json.dumps(stats) and '"yolo"' not in json.dumps(stats)
