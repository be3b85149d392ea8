"""Vectors and prototypes in the catalog, the source of truth the FAISS index is built from.

Vectors are stored as ``FLOAT[]`` rows keyed by (annotation_id, model_id) and
move in and out through Arrow, so a million rows load in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from index.catalog import Catalog
from index.errors import EmptyIndex, NotFound
from index.prototypes import Prototypes


def register_model(catalog: Catalog, model_id: str, config_hash: str, dim: int, backbone: str) -> None:
    """Record a model; a changed config drops its stale vectors and prototypes."""
    with catalog.write() as con:
        row = con.execute("SELECT config_hash FROM models WHERE model_id = ?", [model_id]).fetchone()
        if row is not None and row[0] != config_hash:
            con.execute("DELETE FROM embeddings WHERE model_id = ?", [model_id])
            con.execute("DELETE FROM prototypes WHERE model_id = ?", [model_id])
            con.execute("DELETE FROM models WHERE model_id = ?", [model_id])
            row = None
        if row is None:
            con.execute("INSERT INTO models (model_id, config_hash, dim, backbone) VALUES (?, ?, ?, ?)",
                        [model_id, config_hash, dim, backbone])


def model_record(catalog: Catalog, model_id: str) -> dict:
    """The catalog's record of a model. Raises NotFound listing the known ids."""
    with catalog.read() as con:
        row = con.execute("SELECT model_id, config_hash, dim, backbone FROM models WHERE model_id = ?",
                          [model_id]).fetchone()
        known = [r[0] for r in con.execute("SELECT model_id FROM models ORDER BY 1").fetchall()]
    if row is None:
        raise NotFound(f"unknown model id {model_id!r}; known: {', '.join(known) or 'none'}",
                       hint="train one with `oceanid train`")
    return dict(zip(("model_id", "config_hash", "dim", "backbone"), row))


def _vector_table(ids: np.ndarray, vectors: np.ndarray, **columns) -> pa.Table:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, len(flat) + 1, vectors.shape[1], dtype=np.int32)), flat)
    return pa.table({"annotation_id": pa.array(np.asarray(ids, dtype=np.int64)), **columns, "vector": lists})


def store_embeddings(catalog: Catalog, model_id: str, ids: np.ndarray, vectors: np.ndarray) -> int:
    """Insert or replace vectors ``(n, d) float32`` for annotation ``ids (n,)``; returns n."""
    if len(ids) == 0:
        return 0
    table = _vector_table(ids, vectors, model_id=pa.array([model_id] * len(ids)))
    with catalog.write() as con:
        con.register("incoming", table)
        con.execute("INSERT OR REPLACE INTO embeddings SELECT annotation_id, model_id, vector FROM incoming")
        con.unregister("incoming")
    return len(ids)


def _arrow(con, sql: str, params: list) -> pa.Table:
    """A query's rows as one Arrow table (DuckDB 2 calls it to_arrow_table, 1.x arrow)."""
    relation = con.sql(sql, params=params)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    table = fetch()
    return table.read_all() if isinstance(table, pa.RecordBatchReader) else table


def _to_numpy(table: pa.Table, dim: int) -> tuple[np.ndarray, np.ndarray]:
    ids = table.column("annotation_id").to_numpy().astype(np.int64)
    if len(ids) == 0:
        return ids, np.zeros((0, dim), np.float32)
    values = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ids, np.ascontiguousarray(values.astype(np.float32).reshape(len(ids), -1))


def load_embeddings(catalog: Catalog, model_id: str, splits: Sequence[str] | None = None,
                    with_labels: bool = False):
    """``(ids (n,) int64, vectors (n, d) float32)`` of a model, optionally only some splits,
    ordered by id; with ``with_labels`` also the species names ``(n,)``."""
    dim = model_record(catalog, model_id)["dim"]
    sql = ("SELECT e.annotation_id, a.concept, e.vector FROM embeddings e "
           "JOIN annotations a USING (annotation_id) WHERE e.model_id = ?")
    params: list = [model_id]
    if splits is not None:
        sql += " AND a.split IN (SELECT unnest(?))"
        params.append(list(splits))
    with catalog.read() as con:
        table = _arrow(con, sql + " ORDER BY e.annotation_id", params)
    ids, vectors = _to_numpy(table, dim)
    if with_labels:
        return ids, vectors, np.asarray(table.column("concept").to_pylist(), dtype=object)
    return ids, vectors


def missing_embeddings(catalog: Catalog, model_id: str) -> list[tuple[int, str]]:
    """(annotation_id, crop_path) of crops that have no vector for this model yet."""
    with catalog.read() as con:
        return con.execute(
            """SELECT a.annotation_id, a.crop_path FROM annotations a
               WHERE a.crop_path IS NOT NULL AND NOT EXISTS (
                 SELECT 1 FROM embeddings e WHERE e.annotation_id = a.annotation_id AND e.model_id = ?)
               ORDER BY a.annotation_id""", [model_id]).fetchall()


def store_prototypes(catalog: Catalog, model_id: str, prototypes: Prototypes, origin: str,
                     only: Sequence[str] | None = None) -> None:
    """Replace the stored rows of ``only`` these classes (default: all of them) with ``origin``."""
    names = list(only) if only is not None else list(prototypes.names)
    rows = [(prototypes.names[o], k) for k, o in _numbered(prototypes.owners)]
    keep = [i for i, (n, _) in enumerate(rows) if n in names]
    with catalog.write() as con:
        con.execute("DELETE FROM prototypes WHERE model_id = ? AND concept IN (SELECT unnest(?))",
                    [model_id, names])
        if keep:
            vectors = prototypes.vectors[keep]
            flat = pa.array(vectors.reshape(-1))
            table = pa.table({
                "concept": [rows[i][0] for i in keep], "k": [rows[i][1] for i in keep],
                "vector": pa.ListArray.from_arrays(
                    pa.array(np.arange(0, len(flat) + 1, vectors.shape[1], dtype=np.int32)), flat),
            })
            con.register("incoming", table)
            con.execute("INSERT INTO prototypes SELECT ?, concept, k, ?, vector FROM incoming", [model_id, origin])
            con.unregister("incoming")


def _numbered(owners: np.ndarray):
    seen: dict[int, int] = {}
    for owner in owners.tolist():
        seen[owner] = seen.get(owner, -1) + 1
        yield seen[owner], owner


def load_prototypes(catalog: Catalog, model_id: str) -> tuple[Prototypes, dict[str, str]]:
    """The model's prototypes and each class's origin (train | added). Raises EmptyIndex."""
    with catalog.read() as con:
        table = _arrow(con, "SELECT concept, k, origin, vector FROM prototypes WHERE model_id = ? "
                       "ORDER BY concept, k", [model_id])
    if table.num_rows == 0:
        raise EmptyIndex(f"model {model_id} has no prototypes yet")
    concepts = table.column("concept").to_pylist()
    values = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    vectors = values.astype(np.float32).reshape(len(concepts), -1)
    names = tuple(dict.fromkeys(concepts))
    owners = np.asarray([names.index(c) for c in concepts], np.int64)
    origin = dict(zip(concepts, table.column("origin").to_pylist()))
    return Prototypes(names, vectors, owners), origin
