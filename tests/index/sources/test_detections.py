"""Reading another tool's COCO detections and matching them to frames (index/sources/detections.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.errors import InvalidInput, SourceError
from index.sources.detections import coco_results, match_detections, read_detections


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def frames(tmp_path) -> list[Path]:
    out = []
    for name in ("a/000007.jpg", "b/beach.png"):
        p = tmp_path / "frames" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
        out.append(p)
    return out


def test_results_list_by_file_name_and_by_number(tmp_path, frames):
    path = write(
        tmp_path / "det.json",
        [
            {"image_id": "beach.png", "bbox": [1, 2, 3, 4], "score": 0.5, "category_id": 1},
            {"image_id": 7, "bbox": [5, 6, 7, 8], "score": 0.9},  # 000007.jpg
            {"image_id": "b/beach.png", "bbox": [0, 0, 9, 9], "score": 0.1},
        ],
    )
    matched = match_detections(path, frames)
    boxes = dict(matched.frames)
    assert [b.box for b in boxes[frames[0]]] == [(5, 6, 7, 8)]
    assert [(b.box, b.score) for b in boxes[frames[1]]] == [((1, 2, 3, 4), 0.5), ((0, 0, 9, 9), 0.1)]
    assert matched.skipped == []


def test_images_list_maps_ids_without_frames_given(tmp_path, frames):
    path = write(
        tmp_path / "frames" / "det.json",
        {
            "images": [{"id": 1, "file_name": "a/000007.jpg"}, {"id": 2, "file_name": "missing.jpg"}],
            "annotations": [
                {"image_id": 1, "bbox": [1, 1, 2, 2]},
                {"image_id": 2, "bbox": [1, 1, 2, 2]},
                {"image_id": 3, "bbox": [1, 1, 2, 2]},
            ],
        },
    )
    matched = match_detections(path)
    assert [f for f, _ in matched.frames] == [frames[0]]
    assert dict(matched.frames)[frames[0]][0].score is None
    reasons = dict(matched.skipped)
    assert "no image file" in reasons["image_id 2"] and "no images list" in reasons["image_id 3"]


@pytest.mark.parametrize(
    "entry, words",
    [
        ({"bbox": [1, 2, 3, 4]}, "no image_id"),
        ({"image_id": 7, "bbox": [1, 2, 3]}, "not [x, y, w, h]"),
        ({"image_id": 7, "bbox": ["a", 2, 3, 4]}, "not four numbers"),
        ({"image_id": 7, "bbox": [1, 2, 3, 4], "score": "high"}, "score"),
        ("text", "not an object"),
    ],
)
def test_a_malformed_entry_is_one_line_and_the_rest_is_kept(tmp_path, frames, entry, words):
    path = write(tmp_path / "det.json", [entry, {"image_id": 7, "bbox": [1, 2, 3, 4]}])
    matched = match_detections(path, frames)
    assert len(matched.skipped) == 1 and words in matched.skipped[0][1]
    assert len(dict(matched.frames)[frames[0]]) == 1


@pytest.mark.parametrize(
    "text, error, words",
    [
        ("{", InvalidInput, "not JSON"),
        ('{"x": 1}', InvalidInput, "'annotations'"),
        ("3", InvalidInput, "list of detections"),
    ],
)
def test_an_unusable_file_is_one_error(tmp_path, text, error, words):
    path = tmp_path / "det.json"
    path.write_text(text)
    with pytest.raises(error, match=words):
        read_detections(path)


def test_a_missing_file_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="no such detections file"):
        read_detections(tmp_path / "nope.json")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ENTRY = st.fixed_dictionaries({"image_id": JSON, "bbox": JSON}, optional={"score": JSON})


@settings(max_examples=60, deadline=None)
@given(data=st.lists(ENTRY | JSON, max_size=5))
def test_any_json_list_is_kept_or_reported_never_a_crash(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz")
    path = write(folder / "det.json", data)
    frame = folder / "1.png"
    frame.write_bytes(b"x")
    matched = match_detections(path, [frame])
    kept = sum(len(b) for _, b in matched.frames)
    assert kept <= len(data)
    assert all(isinstance(r, str) and "\n" not in r for _, r in matched.skipped)


def test_coco_results_document():
    doc = coco_results(
        [("a.png", 10, 8, [((1, 2, 3, 4), 0.5, "fish"), ((0, 0, 2, 2), 0.25, "unknown")]), ("b.png", 5, 5, [])],
        ["fish", "unknown"],
        "test",
    )
    assert doc["categories"] == [
        {"id": 1, "name": "fish", "supercategory": "organism"},
        {"id": 2, "name": "unknown", "supercategory": "organism"},
    ]
    assert [a["category_id"] for a in doc["annotations"]] == [1, 2]
    assert doc["annotations"][0]["bbox"] == [1, 2, 3, 4] and doc["annotations"][0]["area"] == 12
    assert [i["file_name"] for i in doc["images"]] == ["a.png", "b.png"] and doc["info"]["description"] == "test"
