"""index.files: a user's output path written as meant, modes that follow the umask, the lock."""

from __future__ import annotations

import os
import stat

import pytest

from index.errors import CatalogBusy, InvalidInput
from index.files import atomic_writer, exclusive_lock, output_target, write_bytes_atomic, write_output


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def test_a_symlink_is_followed_and_stays_a_link(tmp_path):
    (tmp_path / "real").mkdir()
    link = tmp_path / "out.csv"
    link.symlink_to(tmp_path / "real" / "target.csv")  # dangling: the target is a new file
    assert write_output(link, b"a,b\n") == tmp_path / "real" / "target.csv"
    assert link.is_symlink() and (tmp_path / "real" / "target.csv").read_bytes() == b"a,b\n"
    write_output(link, b"c\n")  # an existing target is replaced, the link kept
    assert link.is_symlink() and link.read_bytes() == b"c\n"
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["target.csv"]  # no temp file left


def test_a_fifo_is_refused_and_left_alone(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match="is a FIFO"):
        write_output(fifo, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_link_to_a_fifo_is_refused_too(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to(tmp_path / "pipe")
    with pytest.raises(InvalidInput, match="FIFO .*the link"):
        output_target(tmp_path / "link")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_is_refused_and_left_alone(tmp_path):
    node = tmp_path / "dev"
    os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # made in tmp_path, never a real /dev file
    with pytest.raises(InvalidInput, match="device node"):
        write_output(node, b"x")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_a_folder_and_a_missing_folder_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="is a folder"):
        output_target(tmp_path)
    with pytest.raises(InvalidInput, match="does not exist"):
        output_target(tmp_path / "nowhere" / "x.csv")


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    write_output(tmp_path / "a.csv", b"x")
    with atomic_writer(tmp_path / "b.png") as fh:
        fh.write(b"x")
    write_bytes_atomic(tmp_path / "c.json", b"{}")
    assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {mode}


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "kept.csv"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_output(path, b"new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_bytes() == b"new"


def test_the_lock_waits_then_raises_what_busy_makes(tmp_path):
    import fcntl

    lock = tmp_path / ".lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: flock conflicts like another process
    waited = []
    try:
        with pytest.raises(CatalogBusy, match="busy after"):
            with exclusive_lock(
                lock, 0.2, lambda t: CatalogBusy(f"busy after {t:.1f} s"), on_wait=lambda: waited.append(1)
            ):
                pass
    finally:
        os.close(fd)
    assert waited == [1]
    with exclusive_lock(lock, 0.2, lambda t: CatalogBusy("busy")):  # free once the holder closed it
        pass
