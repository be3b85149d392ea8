"""Files on disk, the one way: content hashes and durable, atomic writes.

Part of the kernel every package may import (with ``index/errors.py`` and
``index/imaging.py``); nothing here imports the rest of oceanid.

- :func:`file_sha256` - sha256 hex of a file (``hashlib.file_digest``).
- :func:`atomic_writer` - a binary file handle whose bytes replace ``path`` only
  when the ``with`` block ends cleanly (temp file in the same folder, flush,
  fsync, ``os.replace``, fsync of the folder). An exception inside the block,
  or a killed process, leaves the old file as it was and no stray temp file
  (a kill may leave a ``.NAME.*.tmp`` beside it, never a half ``NAME``).
- :func:`write_bytes_atomic`, :func:`write_text_atomic`, :func:`write_json_atomic`
  - the same for data in hand.
- :func:`copy_atomic` - a file copied into place the same way.
- :func:`write_durable` - bytes written and fsynced in place (for a path that is
  itself a temporary name the caller renames later), and :func:`fsync_path` for
  a file or a folder (a rename is durable once its folder is fsynced).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def file_sha256(path: str | Path) -> str:
    """sha256 hex of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def fsync_path(path: str | Path) -> None:
    """fsync a file or a folder by path (a folder's fsync makes renames inside it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` in place and fsync it (not atomic: for temporary names)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


@contextmanager
def atomic_writer(path: str | Path, durable: bool = True) -> Iterator[IO[bytes]]:
    """Yield a binary handle; on a clean exit its bytes atomically become ``path``.

    The parent folder is created when missing. On an exception the temp file is
    removed, ``path`` is untouched, and the exception propagates. ``durable=False``
    skips the fsyncs (still atomic: for caches that are rebuilt when lost).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_path(path.parent)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data`` (durable once this returns)."""
    with atomic_writer(path) as fh:
        fh.write(data)


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Atomically replace ``path`` with ``text``."""
    write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 2) -> None:
    """Atomically replace ``path`` with ``data`` as JSON (encoded fully before anything is written)."""
    write_text_atomic(path, json.dumps(data, indent=indent) + "\n")


def copy_atomic(src: str | Path, dest: str | Path, durable: bool = True) -> None:
    """Copy ``src``'s bytes to ``dest`` atomically (a reader never sees half a file)."""
    with open(src, "rb") as fin, atomic_writer(dest, durable) as fout:
        shutil.copyfileobj(fin, fout)
