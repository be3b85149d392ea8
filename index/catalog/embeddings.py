"""Crops, vectors and prototypes in the catalog, the source of truth the FAISS index is built from.

Vectors are stored as ``FLOAT[]`` rows keyed by (annotation_id, model_id) and
move in and out through Arrow, so a million rows load in seconds. A species
added without retraining (its ``support`` crops, their vectors and its
prototype) is written and removed in one transaction each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from index.catalog.catalog import Catalog
from index.catalog.models import ModelRecord as ModelRecord  # re-exported: the many callers import it from here
from index.catalog.models import list_models as list_models
from index.catalog.models import model_record as model_record
from index.catalog.models import register_model as register_model
from index.errors import EmptyIndex
from index.records import SUPPORT
from index.scoring.prototypes import Prototypes

TRAINED, ADDED = "train", "added"  # prototype origins: learned in training | added from examples


@dataclass(frozen=True)
class CropRow:
    """One catalog crop as the workspace lists it (``crop_path`` relative to the home)."""

    annotation_id: int
    concept: str
    split: str | None
    crop_path: str | None
    group_key: str


def labelled_crops(catalog: Catalog, split: str) -> list[tuple[str, str]]:
    """(crop_path relative to home, concept) of every cut crop of one split, by id."""
    with catalog.read() as con:
        return con.execute(
            "SELECT crop_path, concept FROM annotations WHERE split = ? AND crop_path IS NOT NULL "
            "ORDER BY annotation_id",
            [split],
        ).fetchall()


def split_ids(catalog: Catalog, splits: Sequence[str]) -> np.ndarray:
    """(n,) int64 ids of the cut crops in ``splits``, sorted."""
    with catalog.read() as con:
        rows = con.execute(
            "SELECT annotation_id FROM annotations WHERE crop_path IS NOT NULL AND split IN "
            f"({', '.join('?' * len(splits))}) ORDER BY 1",
            list(splits),
        ).fetchall()
    return np.asarray([r[0] for r in rows], dtype=np.int64)


def crop_count(catalog: Catalog) -> int:
    """How many crops have been cut (each may get a vector per model)."""
    with catalog.read() as con:
        return con.execute("SELECT count(*) FROM annotations WHERE crop_path IS NOT NULL").fetchone()[0]


def crop_rows(
    catalog: Catalog,
    concept: str | None = None,
    split: str | None = None,
    embedded_by: str | None = None,
    limit: int | None = None,
) -> list[CropRow]:
    """Crops by id, optionally of one concept, one split, or only those with a vector of ``embedded_by``."""
    sql = "SELECT a.annotation_id, a.concept, a.split, a.crop_path, a.group_key FROM annotations a WHERE TRUE"
    params: list = []
    if concept is not None:
        sql, params = sql + " AND a.concept = ?", params + [concept]
    if split is not None:
        sql, params = sql + " AND a.split = ?", params + [split]
    if embedded_by is not None:
        sql += " AND EXISTS (SELECT 1 FROM embeddings e WHERE e.annotation_id = a.annotation_id AND e.model_id = ?)"
        params.append(embedded_by)
    sql += " ORDER BY a.annotation_id"
    if limit is not None:
        sql, params = sql + " LIMIT ?", params + [int(limit)]
    with catalog.read() as con:
        return [CropRow(*r) for r in con.execute(sql, params).fetchall()]


def group_keys(catalog: Catalog, ids: np.ndarray) -> np.ndarray:
    """(n,) object array: the near-duplicate / track group key of each annotation id (in order)."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        return np.asarray([], dtype=object)
    with catalog.read() as con:
        rows = dict(
            con.execute(
                "SELECT annotation_id, group_key FROM annotations WHERE annotation_id IN (SELECT unnest(?))",
                [ids.tolist()],
            ).fetchall()
        )
    return np.asarray([rows.get(int(i), f"id:{int(i)}") for i in ids], dtype=object)


def _vector_table(ids: np.ndarray, vectors: np.ndarray, **columns) -> pa.Table:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, len(flat) + 1, vectors.shape[1], dtype=np.int32)), flat)
    return pa.table({"annotation_id": pa.array(np.asarray(ids, dtype=np.int64)), **columns, "vector": lists})


def _insert_embeddings(con, model_id: str, ids: np.ndarray, vectors: np.ndarray) -> None:
    table = _vector_table(ids, vectors, model_id=pa.array([model_id] * len(ids)))
    con.register("incoming", table)
    con.execute("INSERT OR REPLACE INTO embeddings SELECT annotation_id, model_id, vector FROM incoming")
    con.unregister("incoming")


def store_embeddings(catalog: Catalog, model_id: str, ids: np.ndarray, vectors: np.ndarray) -> int:
    """Insert or replace vectors ``(n, d) float32`` for annotation ``ids (n,)``; returns n."""
    if len(ids) == 0:
        return 0
    with catalog.write() as con:
        _insert_embeddings(con, model_id, ids, vectors)
    return len(ids)


def _arrow(con, sql: str, params: list) -> pa.Table:
    """A query's rows as one Arrow table (DuckDB 2 calls it to_arrow_table, 1.x arrow)."""
    relation = con.sql(sql, params=params)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    table = fetch()
    return table.read_all() if isinstance(table, pa.RecordBatchReader) else table


def _float_values(column: pa.ChunkedArray) -> np.ndarray:
    """The flattened values of a ``FLOAT[]`` column as one float32 array, read chunk by chunk from the
    Arrow buffers: pyarrow's ``to_numpy`` imports pandas and ``combine_chunks`` / ``flatten`` import
    ``pyarrow.compute`` (together ~0.3 s of a cold ``identify``)."""
    parts = []
    for chunk in column.chunks:
        values = chunk.values
        if chunk.null_count or values.null_count or values.type != pa.float32():
            return column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
        width = np.int64 if pa.types.is_large_list(chunk.type) else np.int32
        offsets = np.frombuffer(
            chunk.buffers()[1], dtype=width, count=len(chunk) + 1, offset=chunk.offset * width(0).itemsize
        )
        data = np.frombuffer(values.buffers()[1], dtype=np.float32)
        parts.append(data[values.offset + offsets[0] : values.offset + offsets[-1]])
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _to_numpy(table: pa.Table, dim: int) -> tuple[np.ndarray, np.ndarray]:
    ids = table.column("annotation_id").to_numpy().astype(np.int64)
    if len(ids) == 0:
        return ids, np.zeros((0, dim), np.float32)
    values = _float_values(table.column("vector"))
    return ids, np.ascontiguousarray(values.astype(np.float32).reshape(len(ids), -1))


def load_embeddings(
    catalog: Catalog,
    model_id: str,
    splits: Sequence[str] | None = None,
    with_labels: bool = False,
    ids: np.ndarray | None = None,
):
    """``(ids (n,) int64, vectors (n, d) float32)`` of a model, optionally only some splits or only
    the crops ``ids`` (those without a vector, or deleted, are left out), ordered by id; with
    ``with_labels`` also the species names ``(n,)``."""
    dim = model_record(catalog, model_id).dim
    sql = (
        "SELECT e.annotation_id, a.concept, e.vector FROM embeddings e "
        "JOIN annotations a USING (annotation_id) WHERE e.model_id = ?"
    )
    params: list = [model_id]
    if splits is not None:
        sql += " AND a.split IN (SELECT unnest(?))"
        params.append(list(splits))
    if ids is not None:
        sql += " AND e.annotation_id IN (SELECT unnest(?))"
        params.append([int(i) for i in ids])
    with catalog.read() as con:
        table = _arrow(con, sql + " ORDER BY e.annotation_id", params)
    found, vectors = _to_numpy(table, dim)
    if with_labels:
        return found, vectors, np.asarray(table.column("concept").to_pylist(), dtype=object)
    return found, vectors


def missing_embeddings(catalog: Catalog, model_id: str) -> list[tuple[int, str]]:
    """(annotation_id, crop_path) of crops that have no vector for this model yet."""
    with catalog.read() as con:
        return con.execute(
            """SELECT a.annotation_id, a.crop_path FROM annotations a
               WHERE a.crop_path IS NOT NULL AND NOT EXISTS (
                 SELECT 1 FROM embeddings e WHERE e.annotation_id = a.annotation_id AND e.model_id = ?)
               ORDER BY a.annotation_id""",
            [model_id],
        ).fetchall()


def _replace_prototypes(
    con, model_id: str, prototypes: Prototypes, origin: str, only: Sequence[str] | None = None
) -> None:
    names = list(only) if only is not None else list(prototypes.names)
    rows = [(prototypes.names[o], k) for k, o in _numbered(prototypes.owners)]
    keep = [i for i, (n, _) in enumerate(rows) if n in names]
    con.execute("DELETE FROM prototypes WHERE model_id = ? AND concept IN (SELECT unnest(?))", [model_id, names])
    if keep:
        vectors = prototypes.vectors[keep]
        flat = pa.array(vectors.reshape(-1))
        table = pa.table(
            {
                "concept": [rows[i][0] for i in keep],
                "k": [rows[i][1] for i in keep],
                "vector": pa.ListArray.from_arrays(
                    pa.array(np.arange(0, len(flat) + 1, vectors.shape[1], dtype=np.int32)), flat
                ),
            }
        )
        con.register("incoming", table)
        con.execute("INSERT INTO prototypes SELECT ?, concept, k, ?, vector FROM incoming", [model_id, origin])
        con.unregister("incoming")


def store_prototypes(
    catalog: Catalog, model_id: str, prototypes: Prototypes, origin: str, only: Sequence[str] | None = None
) -> None:
    """Replace the stored rows of ``only`` these classes (default: all of them) with ``origin``."""
    with catalog.write() as con:
        _replace_prototypes(con, model_id, prototypes, origin, only)


def store_added_prototypes(catalog: Catalog, model_id: str, prototypes: Prototypes, only: Sequence[str]) -> int:
    """Store ``only`` these classes of ``prototypes`` as added species and bump the prototypes
    version, in one transaction; returns the new version."""
    with catalog.write() as con:
        _replace_prototypes(con, model_id, prototypes, ADDED, only)
        return catalog.bump_prototypes_version(model_id, con)


def replace_trained_prototypes(catalog: Catalog, model_id: str, prototypes: Prototypes) -> int:
    """Make ``prototypes`` the model's trained prototypes (added species keep theirs), in one
    transaction that also bumps the prototypes version; returns the new version."""
    with catalog.write() as con:
        con.execute("DELETE FROM prototypes WHERE model_id = ? AND origin = ?", [model_id, TRAINED])
        _replace_prototypes(con, model_id, prototypes, TRAINED)
        return catalog.bump_prototypes_version(model_id, con)


def trained_prototypes_match(catalog: Catalog, model_id: str, prototypes: Prototypes, atol: float = 1e-6) -> bool:
    """True when the stored trained prototypes are ``prototypes`` (same names, rows within ``atol``)."""
    try:
        stored, origins = load_prototypes(catalog, model_id)
    except EmptyIndex:
        return False
    trained = [n for n in stored.names if origins.get(n) == TRAINED]
    if trained != list(prototypes.names):
        return False
    for name in trained:
        mine, theirs = stored.rows_of(name), prototypes.rows_of(name)
        if mine.shape != theirs.shape or not np.allclose(mine, theirs, atol=atol):
            return False
    return True


def support_crops(catalog: Catalog, concept: str) -> list[tuple[int, str]]:
    """(annotation_id, crop_path) of the cut ``support`` crops of an added species, by id."""
    with catalog.read() as con:
        return con.execute(
            "SELECT annotation_id, crop_path FROM annotations WHERE concept = ? AND split = ? "
            "AND crop_path IS NOT NULL ORDER BY 1",
            [concept, SUPPORT],
        ).fetchall()


def add_support_class(
    catalog: Catalog, model_id: str, concept: str, ids: np.ndarray, vectors: np.ndarray, prototypes: Prototypes
) -> int:
    """Store an added species in ONE transaction: its example vectors ``(n, d) float32`` for
    ``ids (n,)``, its prototype rows (``concept``'s rows of ``prototypes``, origin ``added``) and a
    bumped prototypes version. Either all of it is written or none. Returns the new version."""
    with catalog.write() as con:
        _insert_embeddings(con, model_id, ids, vectors)
        _replace_prototypes(con, model_id, prototypes, ADDED, only=[concept])
        return catalog.bump_prototypes_version(model_id, con)


@dataclass(frozen=True)
class RemovedClass:
    """What :func:`remove_support_class` deleted."""

    ids: np.ndarray  # (n,) int64 annotation ids
    crop_paths: list[str]  # their crop files, relative to the home
    image_paths: list[str]  # stored frames no catalog row uses any more, relative to the home


def remove_support_class(catalog: Catalog, model_id: str, concept: str, version: int | None = None) -> RemovedClass:
    """Delete an added species in ONE transaction: its support crops, their vectors (every
    model), their images when nothing else uses them, the model's prototypes of it, and bump
    the prototypes version (or set it back to ``version``, when undoing a half-done add).
    Returns what was deleted, so the caller can remove the files."""
    with catalog.write() as con:
        rows = con.execute(
            "SELECT annotation_id, crop_path, image_id FROM annotations WHERE concept = ? AND split = ?",
            [concept, SUPPORT],
        ).fetchall()
        ids = [r[0] for r in rows]
        con.execute("DELETE FROM embeddings WHERE annotation_id IN (SELECT unnest(?))", [ids])
        con.execute("DELETE FROM annotations WHERE annotation_id IN (SELECT unnest(?))", [ids])
        orphans = [
            r[0]
            for r in con.execute(
                "SELECT path FROM images WHERE image_id IN (SELECT unnest(?)) AND image_id NOT IN "
                "(SELECT image_id FROM annotations)",
                [[r[2] for r in rows]],
            ).fetchall()
        ]
        con.execute("DELETE FROM images WHERE source = 'added' AND image_id NOT IN (SELECT image_id FROM annotations)")
        still = {
            r[0] for r in con.execute("SELECT path FROM images WHERE path IN (SELECT unnest(?))", [orphans]).fetchall()
        }
        con.execute("DELETE FROM prototypes WHERE model_id = ? AND concept = ?", [model_id, concept])
        if version is None:
            catalog.bump_prototypes_version(model_id, con)
        else:
            catalog.set_prototypes_version(model_id, version, con)
    return RemovedClass(np.asarray(ids, dtype=np.int64), [r[1] for r in rows if r[1]], sorted(set(orphans) - still))


def content_digest(ids: np.ndarray, vectors: np.ndarray) -> str:
    """sha256 of a set of vectors keyed by id: ``ids (n,) int64`` + ``vectors (n, d) float32``.

    Order independent (rows are sorted by id first), so an index is stale exactly
    when the set of ids or any of their vectors changed.
    """
    ids = np.asarray(ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(ids[order]).tobytes())
    digest.update(np.ascontiguousarray(np.asarray(vectors, dtype=np.float32)[order]).tobytes())
    return digest.hexdigest()


def _numbered(owners: np.ndarray):
    seen: dict[int, int] = {}
    for owner in owners.tolist():
        seen[owner] = seen.get(owner, -1) + 1
        yield seen[owner], owner


def load_prototypes(catalog: Catalog, model_id: str) -> tuple[Prototypes, dict[str, str]]:
    """The model's prototypes and each class's origin (``train`` | ``added``). Raises EmptyIndex."""
    with catalog.read() as con:
        table = _arrow(
            con, "SELECT concept, k, origin, vector FROM prototypes WHERE model_id = ? ORDER BY concept, k", [model_id]
        )
    if table.num_rows == 0:
        raise EmptyIndex(f"model {model_id} has no prototypes yet")
    concepts = table.column("concept").to_pylist()
    values = _float_values(table.column("vector"))
    vectors = values.astype(np.float32).reshape(len(concepts), -1)
    names = tuple(dict.fromkeys(concepts))
    owners = np.asarray([names.index(c) for c in concepts], np.int64)
    origin = dict(zip(concepts, table.column("origin").to_pylist(), strict=False))
    return Prototypes(names, vectors, owners), origin
