"""A home that cannot be written is one line ("the home <path> cannot be written: ..."), exit 1,
for every command that writes it (issue 30, item 7)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, write_image

COMMANDS = {  # what each writing command is given (the lineage CSV and the example are made below)
    "species add": ["species", "add", "Xenia nova", "{example}"],
    "index rebuild": ["index", "rebuild"],
    "taxa import": ["taxa", "import", "{lineages}"],
    "evaluate": ["evaluate"],
}


def _read_only_mounts_work(tmp_path: Path) -> bool:
    """Whether this machine lets us bind a folder read-only in a private mount namespace (root
    ignores chmod, so that is how a read-only home is made here)."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe-ro").mkdir()
    script = (
        f"mount --bind {tmp_path / 'probe'} {tmp_path / 'probe-ro'} "
        f"&& mount -o remount,ro,bind {tmp_path / 'probe-ro'} "
        f"&& ! touch {tmp_path / 'probe-ro' / 'x'} 2>/dev/null"
    )
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_writing_command_on_a_read_only_home_is_one_line(tiny_ws, tmp_path, command):
    if not _read_only_mounts_work(tmp_path):
        pytest.skip("cannot bind a folder read-only here (needs unshare -m and mount)")
    example = write_image(tmp_path / "example.png", seed=9)
    lineages = tmp_path / "lineages.csv"
    species = tiny_ws.engine().prototypes.names[0]
    lineages.write_text(f"concept,genus,family\n{species},{species.split()[0]},Fictidae\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    args = [a.format(example=example, lineages=lineages) for a in COMMANDS[command]]
    cli = [sys.executable, "-c", "from app.cli import main; main()", "--home", str(ro), *args]
    script = f'mount --bind {tiny_ws.home} {ro} && mount -o remount,ro,bind {ro} && exec "$@"'
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *cli],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: the home {ro} cannot be written"), lines


def test_duckdb_refusing_to_open_for_writing_is_home_not_writable(tiny_ws, monkeypatch):
    """The mapping itself (runs anywhere, root included): DuckDB's IOException for a read-only or
    forbidden file becomes HomeNotWritable naming the home."""
    from index.errors import HomeNotWritable

    real = duckdb.connect

    def connect(path, read_only=False, **kw):
        if not read_only:
            raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Permission denied')
        return real(path, read_only=read_only, **kw)

    monkeypatch.setattr(duckdb, "connect", connect)
    tiny_ws.catalog._ready = False
    with pytest.raises(HomeNotWritable, match=f"the home {tiny_ws.home} cannot be written: .*Permission denied"):
        tiny_ws.catalog.ensure_schema()


def test_a_lock_file_that_cannot_be_made_is_home_not_writable(tiny_ws, monkeypatch):
    import errno

    import index.files
    from index.errors import HomeNotWritable

    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(tiny_ws.paths.writer_lock))

    monkeypatch.setattr(index.files.os, "open", refuse)
    with pytest.raises(HomeNotWritable, match="cannot be written: Read-only file system"):
        tiny_ws.index_build(rebuild=True)
