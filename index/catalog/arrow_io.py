"""The catalog side of distributed embedding: crops out as Arrow, vectors in from Parquet.

A runner on another engine (``embedder/ray_runner.py``) never touches the catalog: the
workspace hands it :func:`crops_to_embed` (an Arrow table) and, when every shard is
written, calls :func:`ingest_vector_shards`, which reads the Parquet files with DuckDB's
native reader and writes all of them in one transaction (all or nothing).

Shard schema (one row per crop): ``annotation_id int64``, ``vector list<float32>``
(null when the crop failed), ``error string`` (null when it did not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from index.catalog.catalog import Catalog
from index.catalog.embeddings import _arrow, model_record
from index.errors import InvalidInput


@dataclass(frozen=True)
class ShardIngest:
    """What one ingest of Parquet vector shards wrote."""

    shards: int
    stored: int  # vectors inserted or replaced
    failed: tuple[tuple[int, str], ...]  # (annotation_id, reason) rows the runner could not embed

    def to_dict(self) -> dict:
        return {
            "shards": self.shards,
            "stored": self.stored,
            "failed": [{"annotation_id": i, "reason": r} for i, r in self.failed],
        }


def crops_to_embed(catalog: Catalog, model_id: str) -> pa.Table:
    """Crops with no vector for ``model_id`` yet: Arrow ``annotation_id int64, crop_path string``
    (relative to the home), ordered by id."""
    sql = """SELECT a.annotation_id, a.crop_path FROM annotations a
             WHERE a.crop_path IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM embeddings e WHERE e.annotation_id = a.annotation_id AND e.model_id = ?)
             ORDER BY a.annotation_id"""
    with catalog.read() as con:
        return _arrow(con, sql, [model_id])


def ingest_vector_shards(catalog: Catalog, model_id: str, shards: Sequence[Path]) -> ShardIngest:
    """Insert or replace the vectors of Parquet ``shards`` for ``model_id`` in one transaction.

    Raises:
        InvalidInput: a vector whose length is not the model's dim, or an id the catalog
            does not know (nothing is written then).
    """
    if not shards:
        return ShardIngest(0, 0, ())
    dim = int(model_record(catalog, model_id).dim)
    files = [str(Path(p)) for p in shards]
    source = "read_parquet(?)"
    with catalog.write() as con:
        bad = con.execute(
            f"SELECT count(*) FROM {source} WHERE vector IS NOT NULL AND len(vector) <> ?", [files, dim]
        ).fetchone()[0]
        if bad:
            raise InvalidInput(f"{bad} vectors in the shards do not have the model's dim {dim}")
        unknown = con.execute(
            f"SELECT count(*) FROM {source} s WHERE NOT EXISTS "
            "(SELECT 1 FROM annotations a WHERE a.annotation_id = s.annotation_id)",
            [files],
        ).fetchone()[0]
        if unknown:
            raise InvalidInput(f"{unknown} shard rows name annotations the catalog does not hold")
        stored = con.execute(
            f"INSERT OR REPLACE INTO embeddings SELECT annotation_id, ?, vector::FLOAT[] "
            f"FROM {source} WHERE vector IS NOT NULL",
            [model_id, files],
        ).fetchone()[0]
        failed = con.execute(
            f"SELECT annotation_id, error FROM {source} WHERE vector IS NULL ORDER BY annotation_id", [files]
        ).fetchall()
    return ShardIngest(len(files), int(stored), tuple((int(i), str(r)) for i, r in failed))
