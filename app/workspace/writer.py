"""One writer per home at a time, across threads and processes.

Every step that publishes an index generation or changes what the live one must hold
(species add / remove, index build / rebuild / rollback, identify --save, taxa import)
runs inside :class:`HomeWriter`: a re-entrant thread lock (the explorer's and the server's
sessions share one Workspace) around an ``fcntl.flock`` on ``<home>/.writer.lock``
(:func:`index.files.exclusive_lock`). A second process waits for the first, up to
``timeout`` seconds, then fails with one line (:class:`index.errors.CatalogBusy`). Whatever
a writer builds on (the live generation, the catalog's vectors and prototypes) it reads
after taking the lock, so two writers never publish from the same old generation.
"""

from __future__ import annotations

import errno
import logging
import threading

from index.catalog.catalog import home_not_writable
from index.errors import CatalogBusy
from index.files import exclusive_lock
from index.home import Home

log = logging.getLogger(__name__)

WRITER_TIMEOUT = 120.0  # seconds a writer waits for another process's writer before giving up


class HomeWriter:
    """``with writer:`` holds the home's writer lock (re-entrant within a thread).

    Raises (on entry) CatalogBusy after ``timeout`` seconds of another process holding it, and
    HomeNotWritable when the lock file cannot be made (a read-only home).
    """

    def __init__(self, home: Home, timeout: float = WRITER_TIMEOUT) -> None:
        self.home, self.timeout = home, timeout
        self._thread = threading.RLock()
        self._depth = 0
        self._held = None  # the exclusive_lock context while this process holds the file lock

    def __enter__(self) -> HomeWriter:
        self._thread.acquire()
        if self._depth == 0:
            try:
                self._held = self._take()
            except BaseException:
                self._thread.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._held is not None:
                held, self._held = self._held, None
                held.__exit__(None, None, None)
        finally:
            self._thread.release()

    def _take(self):
        root = self.home.root

        def busy(waited: float) -> CatalogBusy:
            return CatalogBusy(f"another oceanid process is changing the home {root} (waited {waited:.0f} s for it)")

        if not root.is_dir():  # nothing published yet, and a failed command must not leave a home behind
            return None
        try:
            held = exclusive_lock(
                self.home.writer_lock,
                self.timeout,
                busy,
                on_wait=lambda: log.info("waiting for another writer of %s", root),
            )
            held.__enter__()
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise home_not_writable(root, exc) from None
            raise
        return held
