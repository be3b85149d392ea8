"""Output files written as the user means them (links followed; FIFOs, device nodes, folders
refused in one line), with the umask's mode; Ctrl-C keeps what a batch did; one bad path on the
command line is one row; oceanid's own COCO file reads back from anywhere (issue 30)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import write_image
from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def crops_of(home: Path, n: int) -> list[Path]:
    return sorted((home / "crops").rglob("*.png"))[:n]


def identify(home: Path, *args):
    return runner.invoke(app, ["--home", str(home), "identify", *map(str, args)])


def boxes_file(folder: Path, frames: int = 1) -> Path:
    """``frames`` drawn frames under ``folder/frames`` and a COCO results file naming two boxes in each."""
    entries = []
    for n in range(frames):
        write_image(folder / "frames" / f"f{n}.png", size=(160, 120), seed=300 + n)
        entries += [
            {"image_id": f"frames/f{n}.png", "bbox": [10, 10, 60, 50], "score": 0.9},
            {"image_id": f"frames/f{n}.png", "bbox": [80, 50, 60, 50], "score": 0.8},
        ]
    path = folder / "boxes.json"
    path.write_text(json.dumps(entries))
    return path


# -- item 2: what the output path is ---------------------------------------------------------


def test_csv_through_a_symlink_writes_its_target_and_keeps_the_link(tiny_ws, tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "found.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    result = identify(tiny_ws.home, crops_of(tiny_ws.home, 1)[0], "--csv", link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text().startswith("image,source,")


def test_csv_to_a_fifo_is_refused_in_one_line_before_the_work(tiny_ws, tmp_path, monkeypatch):
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    calls = []
    monkeypatch.setattr(type(tiny_ws), "identify", lambda *a, **k: calls.append(1) or [])
    result = identify(tiny_ws.home, crops_of(tiny_ws.home, 1)[0], "--csv", fifo)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "FIFO" in lines[0], lines
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still the FIFO: nothing replaced it
    assert calls == []  # refused before any crop was identified


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_csv_to_a_device_node_is_refused_and_left_alone(tiny_ws, tmp_path):
    node = tmp_path / "null-like"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # in tmp_path: never a real /dev file
    result = identify(tiny_ws.home, crops_of(tiny_ws.home, 1)[0], "--csv", node)
    assert result.exit_code == 1, result.output
    assert "device node" in result.output and len(result.output.strip().splitlines()) == 1
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_coco_to_a_fifo_is_refused_and_a_fifo_among_the_drawings_too(tiny_ws, tmp_path):
    boxes = boxes_file(tmp_path / "in")
    fifo = tmp_path / "found.json"
    os.mkfifo(fifo)
    result = identify(tiny_ws.home, "--boxes", boxes, "--coco", fifo)
    assert result.exit_code == 1 and "FIFO" in result.output, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    drawn = tmp_path / "drawn"
    drawn.mkdir()
    os.mkfifo(drawn / "frames__f0.png")
    result = identify(tiny_ws.home, "--boxes", boxes, "--draw", drawn)
    assert result.exit_code == 1 and "FIFO" in result.output, result.output
    assert stat.S_ISFIFO(os.lstat(drawn / "frames__f0.png").st_mode)


# -- item 3: modes ---------------------------------------------------------------------------


def test_written_files_follow_the_umask(tiny_ws, tmp_path, umask022):
    before = set((tiny_ws.home / "crops").rglob("*.png"))
    result = identify(tiny_ws.home, crops_of(tiny_ws.home, 1)[0], "--csv", tmp_path / "one.csv")
    assert result.exit_code == 0, result.output
    boxes = boxes_file(tmp_path / "in")
    result = identify(
        tiny_ws.home,
        "--boxes",
        boxes,
        "--csv",
        tmp_path / "frames.csv",
        "--coco",
        tmp_path / "found.json",
        "--draw",
        tmp_path / "drawn",
        "--save",
    )
    assert result.exit_code == 0, result.output
    saved = set((tiny_ws.home / "crops").rglob("*.png")) - before
    written = [
        tmp_path / "one.csv",
        tmp_path / "frames.csv",
        tmp_path / "found.json",
        *(tmp_path / "drawn").iterdir(),
        *saved,
    ]
    assert len(saved) == 2 and len(written) == 6
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {p.name: "0o644" for p in written}


# -- item 10: COCO read back ---------------------------------------------------------------------


def test_own_coco_output_is_read_back_from_any_working_folder(tiny_ws, tmp_path, monkeypatch):
    boxes = boxes_file(tmp_path / "in", frames=2)
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "in")  # identify runs beside the frames, writes the COCO file elsewhere
    result = identify(tiny_ws.home, "frames", "--boxes", boxes, "--coco", tmp_path / "out" / "found.json", "--json")
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = identify(tiny_ws.home, "--boxes", tmp_path / "out" / "found.json", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["skipped"] == [] and len(found["frames"]) == 2
    assert sum(len(f["organisms"]) for f in found["frames"]) == 4


# -- item 4: Ctrl-C --------------------------------------------------------------------------------


def _interrupt_on_call(monkeypatch, owner, name, call: int) -> None:
    """``owner.name`` raises KeyboardInterrupt (as SIGINT does) on its ``call``-th call."""
    real, count = getattr(owner, name), [0]

    def wrapped(*args, **kwargs):
        count[0] += 1
        if count[0] == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)


def test_ctrl_c_during_identify_writes_the_rows_done(tiny_ws, tmp_path, monkeypatch):
    import app.workspace.identify as identify_step

    monkeypatch.setattr(identify_step, "BATCH", 2, raising=False)
    _interrupt_on_call(monkeypatch, identify_step, "decode", 5)  # in the third batch of two
    crops = crops_of(tiny_ws.home, 7)
    result = identify(tiny_ws.home, *crops, "--csv", tmp_path / "part.csv")
    assert result.exit_code == 130, result.output
    assert result.output.strip().splitlines()[-1] == "interrupted at 4 of 7"
    rows = (tmp_path / "part.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 4 and rows[1].startswith(crops[0].name)


def test_ctrl_c_during_identify_json_prints_the_rows_done(tiny_ws, monkeypatch):
    import app.workspace.identify as identify_step
    from app.workspace.engine import Engine

    monkeypatch.setattr(identify_step, "BATCH", 2, raising=False)
    _interrupt_on_call(monkeypatch, Engine, "embed", 2)  # the forward pass of the second batch
    result = identify(tiny_ws.home, *crops_of(tiny_ws.home, 5), "--json")
    assert result.exit_code == 130
    assert len(json.loads(result.stdout)) == 2


def test_ctrl_c_during_frames_save_keeps_the_frames_done(tiny_ws, tmp_path, monkeypatch):
    from app.workspace.frames import cascade

    monkeypatch.setattr(cascade, "FRAME_BATCH", 1, raising=False)
    _interrupt_on_call(monkeypatch, cascade, "decode", 3)  # reading the third frame
    before = set((tiny_ws.home / "crops").rglob("*.png"))
    boxes = boxes_file(tmp_path / "in", frames=4)
    result = identify(tiny_ws.home, "--boxes", boxes, "--csv", tmp_path / "part.csv", "--save")
    assert result.exit_code == 130, result.output
    assert result.output.strip().splitlines()[-1] == "interrupted at 2 of 4"
    assert "saved 4 predicted crops" in result.output
    assert len(set((tiny_ws.home / "crops").rglob("*.png")) - before) == 4
    assert len((tmp_path / "part.csv").read_text().strip().splitlines()) == 1 + 4


# -- item 9: one bad path on the command line -------------------------------------------------------


def test_a_fifo_on_the_command_line_is_one_row_and_never_opened(tiny_ws, tmp_path):
    """A FIFO given as an image is a row saying what it is (opening one waits for a writer)."""
    fifo = tmp_path / "stuck.png"
    os.mkfifo(fifo)
    result = identify(tiny_ws.home, crops_of(tiny_ws.home, 1)[0], fifo, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["error"] is None for r in rows] == [True, False]
    assert "not a regular file" in rows[1]["error"]


def test_a_folder_that_cannot_be_listed_is_one_row(tiny_ws, tmp_path, monkeypatch):
    """A path whose listing fails (no permission: root is not stopped by chmod, so the listing
    is made to fail) is that path's row; the other images are identified, exit 0."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real = Path.rglob

    def rglob(self, pattern):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, pattern)

    monkeypatch.setattr(Path, "rglob", rglob)
    result = identify(tiny_ws.home, crops_of(tiny_ws.home, 1)[0], locked, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 2 and rows[0]["error"] is None and "folder" in rows[1]["error"]


def test_only_bad_paths_exit_1(tiny_ws, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    result = identify(tiny_ws.home, tmp_path / "empty.png", tmp_path / "missing.png")
    assert result.exit_code == 1
    assert "2 of 2 images could not be read" in result.output
