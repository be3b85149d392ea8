"""Catalog reads kept until the catalog's files change (app.workspace.catalog_reads)."""

from __future__ import annotations

import app.workspace.catalog_reads as catalog_reads
from app.workspace.catalog_reads import MAX_AGE, CatalogReads


def counting():
    calls = []

    def read():
        calls.append(1)
        return len(calls)

    return read, calls


def test_a_value_is_read_once_while_the_catalog_is_unchanged(tmp_path):
    db = tmp_path / "catalog.duckdb"
    db.write_bytes(b"x")
    reads, (read, calls) = CatalogReads(db), counting()
    assert [reads.get("k", read) for _ in range(5)] == [1] * 5 and len(calls) == 1


def test_a_write_to_the_catalog_or_its_log_reads_again(tmp_path):
    db = tmp_path / "catalog.duckdb"
    db.write_bytes(b"x")
    reads, (read, _) = CatalogReads(db), counting()
    assert reads.get("k", read) == 1
    (tmp_path / "catalog.duckdb.wal").write_bytes(b"commit")  # another process wrote
    assert reads.get("k", read) == 2
    db.write_bytes(b"xy")  # checkpointed
    assert reads.get("k", read) == 3 and reads.get("k", read) == 3


def test_a_value_older_than_max_age_is_read_again(tmp_path, monkeypatch):
    db = tmp_path / "catalog.duckdb"
    db.write_bytes(b"x")
    clock = [100.0]
    monkeypatch.setattr(catalog_reads.time, "monotonic", lambda: clock[0])
    reads, (read, _) = CatalogReads(db), counting()
    assert reads.get("k", read) == 1
    clock[0] += MAX_AGE / 2
    assert reads.get("k", read) == 1
    clock[0] += MAX_AGE
    assert reads.get("k", read) == 2


def test_another_workspace_bumping_the_prototypes_is_seen_by_the_next_call(tiny_ws):
    from app.workspace import Workspace

    first = tiny_ws.engine()
    assert tiny_ws.engine() is first
    Workspace(tiny_ws.home).catalog.bump_prototypes_version("tiny")  # as a CLI process would
    assert tiny_ws.engine() is not first
