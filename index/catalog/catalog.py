"""The DuckDB catalog: images, annotations, taxa, models, embeddings, prototypes.

DuckDB allows one writing process or many reading ones, never both, so every
operation opens the file for its own duration (:meth:`Catalog.read` /
:meth:`Catalog.write`), writes inside one transaction, and retries a lock held
by another process briefly before raising :class:`CatalogBusy`.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from index.catalog.schema import SCHEMA, SCHEMA_VERSION, migrate
from index.errors import CatalogBusy, HomeNotWritable, NotFound

log = logging.getLogger(__name__)


# meta keys (read and written only through the typed methods of Catalog)
CURRENT_MODEL = "current_model"
CURRENT_DETECTOR = "current_detector"
PROTOTYPES_VERSION = "prototypes_version:"  # + model id
LAST_REPORT = "last_report"
MODEL_STALE = "model_stale:"  # + model id -> why the model no longer matches the catalog (re-split under it)


def _is_lock_error(exc: Exception) -> bool:
    """Another process holds the file, or (inside this process) another thread holds a
    connection of the other mode: DuckDB refuses a read-only and a read-write connection to
    one file at once, so threads (the explorer's sessions) wait for each other like processes."""
    text = str(exc).lower()
    if "different configuration than existing connections" in text:
        return True
    return "lock" in text and ("conflicting" in text or "could not set" in text or "held" in text)


def _is_write_refused(exc: BaseException) -> bool:
    """The file system refused to open or write the catalog: read-only, or no permission."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    text = str(exc).lower()
    return "read-only file system" in text or "permission denied" in text


def home_not_writable(home: Path, exc: BaseException) -> HomeNotWritable:
    """The one-line error for a home the file system will not let us write."""
    reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]) or type(
        exc
    ).__name__
    return HomeNotWritable(f"the home {home} cannot be written: {reason}")


class Catalog:
    """A DuckDB catalog file; each operation opens and closes its own connection.

    ``busy_timeout`` is how long (seconds) to keep retrying when another process
    holds the file before raising :class:`CatalogBusy`.
    """

    def __init__(self, path: Path | str, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._ready = False
        self._held = threading.local()  # the thread's open read connection, shared by nested reads
        self._meta: tuple[tuple, dict[str, str]] | None = None  # (file stamp, meta table)

    def __getstate__(self) -> dict:  # a Catalog travels to other processes (Ray) without its open reads
        return {k: v for k, v in self.__dict__.items() if k != "_held"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._held = threading.local()

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException) as exc:
                if not read_only and _is_write_refused(exc):
                    raise home_not_writable(self.path.parent, exc) from None
                if not _is_lock_error(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise CatalogBusy(f"catalog is busy: {self.path} is locked by another process") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def ensure_schema(self) -> None:
        """Create the file and its tables if missing (idempotent)."""
        if self._ready:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if _is_write_refused(exc):
                raise home_not_writable(self.path.parent, exc) from None
            raise
        con = self._connect(read_only=False)
        try:
            con.execute(SCHEMA)
            migrate(con)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        finally:
            con.close()
        self._ready = True

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        self.ensure_schema()
        con = self._connect(read_only=False)
        try:
            con.begin()
            try:
                yield con
            except BaseException:
                con.rollback()
                raise
            con.commit()
        except duckdb.IOException as exc:  # the file opened, but its folder refuses the write-ahead log
            if _is_write_refused(exc):
                raise home_not_writable(self.path.parent, exc) from None
            raise
        finally:
            con.close()

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection (many readers may hold one at once). A read inside another read of the
        same thread shares the outer connection: a step of several reads (loading an engine) opens the
        file once, not once per read (each open is tens of ms of a cold ``identify``)."""
        held = getattr(self._held, "con", None)
        if held is not None:
            yield held
            return
        if not self.path.exists():
            raise NotFound(
                f"no catalog at {self.path}",
                hint="ingest data first, e.g. `oceanid ingest synthetic` or `oceanid demo`",
            )
        if not self._ready and self._outdated():
            self.ensure_schema()
        con = self._connect(read_only=True)
        self._held.con = con
        try:
            yield con
        finally:
            self._held.con = None
            con.close()

    def _outdated(self) -> bool:
        """True when the file was written by an older schema (checked once per Catalog)."""
        con = self._connect(read_only=True)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except duckdb.CatalogException:
            return True
        finally:
            con.close()
        if row is not None and int(row[0]) >= SCHEMA_VERSION:
            self._ready = True  # nothing to migrate (ensure_schema still runs before a write)
            return False
        return True

    def exists(self) -> bool:
        """True once the catalog file has been created."""
        return self.path.exists()

    # -- small helpers used by several commands ---------------------------------

    def _stamp(self) -> tuple:
        """Changes whenever any process writes (the file or its write-ahead log)."""
        out = []
        for path in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                st = path.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def get_meta(self, key: str) -> str | None:
        """A value of the meta table; re-read only when the catalog file changed
        (queries ask for the live model on every call, and opening DuckDB costs ms)."""
        if not self.exists():
            return None
        stamp = self._stamp()
        if self._meta is None or self._meta[0] != stamp:
            with self.read() as con:
                self._meta = (stamp, dict(con.execute("SELECT key, value FROM meta").fetchall()))
        return self._meta[1].get(key)

    def set_meta(self, key: str, value: str) -> None:
        """Set one key of the meta table (one short write transaction)."""
        with self.write() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    # -- the meta keys, typed: the only place their names are written ------------

    def current_model(self) -> str | None:
        """The model the commands use when ``--model`` is not given (the last trained)."""
        return self.get_meta(CURRENT_MODEL)

    def set_current_model(self, model_id: str) -> None:
        self.set_meta(CURRENT_MODEL, model_id)

    def current_detector(self) -> str | None:
        """The detector ``oceanid detect`` uses when ``--detector`` is not given (the last trained)."""
        return self.get_meta(CURRENT_DETECTOR)

    def set_current_detector(self, detector_id: str) -> None:
        self.set_meta(CURRENT_DETECTOR, detector_id)

    def prototypes_version(self, model_id: str) -> int:
        """A counter bumped whenever the model's prototypes change (0 = never)."""
        return int(self.get_meta(PROTOTYPES_VERSION + model_id) or 0)

    def bump_prototypes_version(self, model_id: str, con: duckdb.DuckDBPyConnection | None = None) -> int:
        """Increment the prototypes version; inside ``con``'s transaction when given. Returns it."""
        if con is None:
            with self.write() as own:
                return self.bump_prototypes_version(model_id, own)
        key = PROTOTYPES_VERSION + model_id
        row = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        version = int(row[0]) + 1 if row else 1
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, str(version)])
        return version

    def set_prototypes_version(self, model_id: str, version: int, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Set the prototypes version (0 removes it); inside ``con``'s transaction when given."""
        if con is None:
            with self.write() as own:
                return self.set_prototypes_version(model_id, version, own)
        key = PROTOTYPES_VERSION + model_id
        if version:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, str(version)])
        else:
            con.execute("DELETE FROM meta WHERE key = ?", [key])

    def model_stale(self, model_id: str) -> str | None:
        """Why ``model_id`` is stale (trained on a split that was replaced), or None when it is not."""
        return self.get_meta(MODEL_STALE + model_id)

    def set_model_stale(self, model_id: str, reason: str | None, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Mark the model stale with ``reason`` (None clears the mark); inside ``con``'s transaction when given."""
        if con is None:
            with self.write() as own:
                return self.set_model_stale(model_id, reason, own)
        key = MODEL_STALE + model_id
        if reason:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, reason])
        else:
            con.execute("DELETE FROM meta WHERE key = ?", [key])

    def last_report(self) -> str | None:
        """The folder of the last ``oceanid evaluate`` report, if any."""
        return self.get_meta(LAST_REPORT)

    def set_last_report(self, folder: str) -> None:
        self.set_meta(LAST_REPORT, folder)
