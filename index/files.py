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
- :func:`output_target` / :func:`output_writer` / :func:`write_output` - a file a user
  named (``--csv``, ``--coco``, ``--draw``): checked before the work, written as meant (a
  symlink is followed and its target written; a folder, FIFO, device node or socket is
  refused with one line; nothing but the target is ever replaced).
- :func:`exclusive_lock` - an ``fcntl.flock`` on a lock file, waited for up to a timeout.

Every file written here gets the mode a plain ``open`` would give it (``0o666`` less the
umask; an existing file keeps its mode), not the ``0o600`` of a temporary file.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
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
        os.fchmod(fd, new_file_mode(path))
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


def current_umask() -> int:
    """The process umask, read without changing it (Linux ``/proc``; elsewhere set and restored)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(path: str | Path) -> int:
    """The mode a file written at ``path`` should have: an existing regular file's own mode,
    else ``0o666`` less the umask (what ``open(path, "w")`` gives)."""
    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    except OSError:
        pass
    return 0o666 & ~current_umask()


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a device node"),
    (stat.S_ISBLK, "a device node"),
    (stat.S_ISSOCK, "a socket"),
)


def output_target(path: str | Path, what: str = "output file") -> Path:
    """The file a user's output ``path`` names, checked before the work.

    A symlink (or a chain of them) is followed: the file it points to is what gets written
    (a dangling link names a new file at its target). A new path or a regular file is
    accepted; anything else is refused. Returns the absolute target.

    Raises:
        InvalidInput: the target is a folder, FIFO, device node or socket, its folder is
            missing, or it cannot be written (one line each).
    """
    from index.errors import InvalidInput

    path = Path(path)
    target = Path(os.path.realpath(path))
    via = f" (the link {path} points there)" if target != path.absolute() else ""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InvalidInput(f"{what} {path}: {exc.strerror}", hint="write elsewhere") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise InvalidInput(
            f"{what} {target} is {kind}{via}, not a regular file", hint="give the name of a new or ordinary file"
        )
    parent = target.parent
    if not parent.is_dir():
        raise InvalidInput(
            f"{what} {path}: the folder {parent} does not exist", hint="create it first, or write elsewhere"
        )
    if not os.access(parent, os.W_OK) or (st is not None and not os.access(target, os.W_OK)):
        raise InvalidInput(f"{what} {path} is not writable", hint="write elsewhere")
    return target


@contextmanager
def output_writer(path: str | Path, what: str = "output file", durable: bool = False) -> Iterator[IO[bytes]]:
    """:func:`atomic_writer` on the :func:`output_target` of a user's path (checked again now:
    a FIFO made since the check is still refused). Only the target is ever replaced."""
    with atomic_writer(output_target(path, what), durable=durable) as fh:
        yield fh


def write_output(path: str | Path, data: bytes, what: str = "output file") -> Path:
    """Write ``data`` to a user's output path (:func:`output_writer`); returns the file written."""
    target = output_target(path, what)
    with atomic_writer(target, durable=False) as fh:
        fh.write(data)
    return target


@contextmanager
def exclusive_lock(
    path: str | Path, timeout: float, busy: Callable[[float], BaseException], on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on the lock file ``path`` (created when missing).

    Another holder (any process) is waited for, polling, up to ``timeout`` seconds; then
    ``busy(waited)`` is raised. ``on_wait`` is called once when the lock is not free at first.
    The lock goes with the process: a killed holder never leaves it taken.

    Raises:
        OSError: the lock file cannot be opened (a read-only folder): the caller names it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666 & ~current_umask())
    try:
        start = time.monotonic()
        delay, waited = 0.02, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            elapsed = time.monotonic() - start
            if elapsed >= timeout:
                raise busy(elapsed)
            time.sleep(min(delay, max(timeout - elapsed, 0.0)))
            delay = min(delay * 2, 0.25)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
