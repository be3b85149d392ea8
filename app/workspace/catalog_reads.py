"""Catalog reads every query makes, kept until the catalog changes on disk.

Each ``identify`` needs the model's prototypes version (to know whether its engine is
current) and the taxa tree; reading them opens DuckDB twice, which cost a served one-crop
identify more than its forward pass (bench/serve_load.py). :class:`CatalogReads` keeps each
value with a signature of the catalog's files (``catalog.duckdb`` and its ``.wal``: inode,
size, mtime) taken BEFORE the read, and reads again when the signature changes (a write by
any process changes it) or the value is older than :data:`MAX_AGE` seconds (a write that left
both files' size and mtime tick unchanged). So a CLI ``species add`` or ``taxa import`` is
seen by the next request, at worst :data:`MAX_AGE` later.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_AGE = 1.0  # seconds a value is trusted without a file change
MAX_KEYS = 256  # values kept (a server sees many filters): the oldest read is dropped first


class CatalogReads:
    """Values read from the catalog at ``path``, re-read when its files change."""

    def __init__(self, path: Path) -> None:
        self.files = (Path(path), Path(f"{path}.wal"))
        self._values: dict[Any, tuple[tuple, float, Any]] = {}
        self._lock = threading.Lock()

    def signature(self) -> tuple:
        """(inode, size, mtime ns) of the catalog and its write-ahead log (None when absent)."""
        out = []
        for f in self.files:
            try:
                st = os.stat(f)
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def get(self, key: Any, read: Callable[[], Any]) -> Any:
        """``read()``'s value for ``key``, read again only when the catalog changed (or aged)."""
        signature, now = self.signature(), time.monotonic()
        held = self._values.get(key)
        if held is not None and held[0] == signature and now - held[1] < MAX_AGE:
            return held[2]
        value = read()
        with self._lock:
            self._values.pop(key, None)
            self._values[key] = (signature, now, value)
            while len(self._values) > MAX_KEYS:
                self._values.pop(next(iter(self._values)))
        return value

    def clear(self) -> None:
        with self._lock:
            self._values = {}
