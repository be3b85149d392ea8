"""index/files.py: one sha256, atomic writes that leave the old file whole on failure."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from PIL import Image

from index.files import (
    atomic_writer,
    copy_atomic,
    file_sha256,
    write_bytes_atomic,
    write_durable,
    write_json_atomic,
    write_text_atomic,
)
from index.ingest import crops, ingest
from index.vectors import generations


def test_sha256_matches_hashlib_and_is_the_one_everybody_uses(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(200_000))
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ingest.file_sha256 is file_sha256 and generations.file_sha256 is file_sha256


@pytest.mark.parametrize(
    "write",
    [
        lambda p: write_bytes_atomic(p, b"new"),
        lambda p: write_text_atomic(p, "new"),
        lambda p: write_json_atomic(p, {"v": "new"}),
    ],
)
def test_writes_replace_the_content(tmp_path, write):
    path = tmp_path / "sub" / "f.txt"
    write(path)
    write(path)
    assert "new" in path.read_text()
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.txt"]


def test_json_round_trips(tmp_path):
    write_json_atomic(tmp_path / "c.json", {"a": [1, 2.5, "ü"]})
    assert json.loads((tmp_path / "c.json").read_text(encoding="utf-8")) == {"a": [1, 2.5, "ü"]}


class Boom(RuntimeError):
    pass


def test_crash_inside_the_writer_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "CURRENT"
    path.write_bytes(b"old")
    with pytest.raises(Boom):
        with atomic_writer(path) as fh:
            fh.write(b"half of the new")
            raise Boom
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["CURRENT"]


def test_unserialisable_json_leaves_the_old_file(tmp_path):
    path = tmp_path / "config.json"
    write_json_atomic(path, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"v": object()})
    assert json.loads(path.read_text()) == {"v": 1}


def test_crop_save_failing_mid_write_keeps_the_old_crop(tmp_path, monkeypatch):
    path = tmp_path / "crops" / "1.png"
    crops.save_atomic(Image.new("RGB", (4, 4), "red"), path)
    before = path.read_bytes()

    def broken_save(self, fp, format=None, **kw):
        fp.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        crops.save_atomic(Image.new("RGB", (4, 4), "blue"), path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["1.png"]


def test_copy_atomic_and_durable_write(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 70_000)
    copy_atomic(src, tmp_path / "a" / "dest.bin")
    assert (tmp_path / "a" / "dest.bin").read_bytes() == src.read_bytes()
    write_durable(tmp_path / "d", b"abc")
    assert (tmp_path / "d").read_bytes() == b"abc"


def test_copy_from_a_missing_source_leaves_dest_alone(tmp_path):
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"keep")
    with pytest.raises(FileNotFoundError):
        copy_atomic(tmp_path / "missing", dest)
    assert dest.read_bytes() == b"keep"
