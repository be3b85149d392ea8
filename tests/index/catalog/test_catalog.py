"""The catalog: schema, short-lived connections, and the busy-catalog error."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from index.catalog.catalog import Catalog
from index.errors import CatalogBusy, NotFound


def test_schema_is_idempotent(tmp_path):
    catalog = Catalog(tmp_path / "c.duckdb")
    catalog.ensure_schema()
    Catalog(tmp_path / "c.duckdb").ensure_schema()
    with catalog.read() as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"images", "annotations", "taxa", "models", "embeddings", "prototypes", "crop_meta"} <= tables


def test_read_missing_catalog_says_what_to_do(tmp_path):
    with pytest.raises(NotFound, match="no catalog"):
        with Catalog(tmp_path / "none.duckdb").read():
            pass


def test_failed_write_rolls_back(tmp_path):
    catalog = Catalog(tmp_path / "c.duckdb")
    with pytest.raises(RuntimeError):
        with catalog.write() as con:
            con.execute("INSERT INTO meta VALUES ('k', 'v')")
            raise RuntimeError("boom")
    assert catalog.get_meta("k") is None


def hold_lock(path, seconds: float) -> subprocess.Popen:
    """Another process that opens the catalog for writing and keeps it for ``seconds``."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "time.sleep(float(sys.argv[2]))",
            str(path),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_busy_catalog_gives_clear_error(tmp_path):
    path = tmp_path / "c.duckdb"
    Catalog(path).ensure_schema()
    holder = hold_lock(path, 30)
    try:
        start = time.monotonic()
        with pytest.raises(CatalogBusy, match="catalog is busy"):
            with Catalog(path, busy_timeout=0.5).write():
                pass
        assert time.monotonic() - start < 5
    finally:
        holder.kill()
        holder.wait()


def test_busy_catalog_retries_until_free(tmp_path):
    path = tmp_path / "c.duckdb"
    Catalog(path).ensure_schema()
    holder = hold_lock(path, 1.0)
    try:
        catalog = Catalog(path, busy_timeout=20)
        catalog.set_meta("after", "wait")
        assert catalog.get_meta("after") == "wait"
    finally:
        holder.kill()
        holder.wait()


def test_a_v3_catalog_gains_the_origin_column_on_open(tmp_path):
    """Schema 4 adds annotations.origin / detection_score: a catalog written before them opens with its
    boxes as ground truth (origin 'truth'), visible to filters through crop_meta."""
    import duckdb

    path = tmp_path / "catalog.duckdb"
    Catalog(path).ensure_schema()
    con = duckdb.connect(str(path))
    con.execute("DROP VIEW crop_meta")
    con.execute("ALTER TABLE annotations DROP COLUMN origin")
    con.execute("ALTER TABLE annotations DROP COLUMN detection_score")
    con.execute(
        "INSERT INTO images (source, source_id, sha256, path, width, height) VALUES ('coco', '1', 'x', 'p', 9, 9)"
    )
    con.execute("INSERT INTO annotations (image_id, concept, x, y, w, h, group_key) VALUES (1, 'a', 0, 0, 5, 5, 'g')")
    con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    con.close()
    with Catalog(path).read() as con:
        assert con.execute("SELECT origin, detection_score FROM crop_meta").fetchall() == [("truth", None)]


def test_nested_reads_share_one_connection_per_thread_and_release_it(tmp_path):
    # would fail: a nested read opening its own connection (the file opened once per read), a held
    # connection leaking to another thread, or one kept open after the outer read (a write must follow)
    import threading

    catalog = Catalog(tmp_path / "catalog.duckdb")
    catalog.ensure_schema()
    others = []
    with catalog.read() as outer:
        with catalog.read() as inner:
            assert inner is outer
        worker = threading.Thread(target=lambda: others.append(catalog.read().__enter__()))
        worker.start()
        worker.join()
        assert others and others[0] is not outer
        assert outer.execute("SELECT 1").fetchone() == (1,)  # the inner exit did not close it
    others[0].close()
    with catalog.write() as con:
        con.execute("INSERT OR REPLACE INTO meta VALUES ('probe', 'x')")
    with catalog.read() as again:
        assert again is not outer
        assert again.execute("SELECT value FROM meta WHERE key = 'probe'").fetchone() == ("x",)
