"""The models the catalog knows: registered by ``train`` (id, encoder config hash, dimension, backbone),
read back as :class:`ModelRecord` (with the count of crops embedded when listed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from index.catalog.catalog import Catalog
from index.errors import NotFound


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
            con.execute(
                "INSERT INTO models (model_id, config_hash, dim, backbone) VALUES (?, ?, ?, ?)",
                [model_id, config_hash, dim, backbone],
            )


@dataclass(frozen=True)
class ModelRecord:
    """The catalog's record of one model (what ``train`` registered, plus counts when listed)."""

    model_id: str
    config_hash: str  # embedder.model.config_hash of the model folder the vectors were made with
    dim: int  # vector dimension
    backbone: str
    created_at: Any = None  # when listed (list_models)
    vectors: int = 0  # crops embedded with it, when listed (list_models)


def model_record(catalog: Catalog, model_id: str) -> ModelRecord:
    """The catalog's record of a model. Raises NotFound listing the known ids."""
    with catalog.read() as con:
        row = con.execute(
            "SELECT model_id, config_hash, dim, backbone FROM models WHERE model_id = ?", [model_id]
        ).fetchone()
        known = [r[0] for r in con.execute("SELECT model_id FROM models ORDER BY 1").fetchall()]
    if row is None:
        raise NotFound(
            f"unknown model id {model_id!r}; known: {', '.join(known) or 'none'}", hint="train one with `oceanid train`"
        )
    return ModelRecord(row[0], row[1], int(row[2]), row[3])


def list_models(catalog: Catalog) -> list[ModelRecord]:
    """Every recorded model, oldest first, with the count of crops embedded."""
    with catalog.read() as con:
        rows = con.execute(
            "SELECT m.model_id, m.config_hash, m.dim, m.backbone, m.created_at, count(e.annotation_id) "
            "FROM models m LEFT JOIN embeddings e USING (model_id) GROUP BY ALL "
            "ORDER BY m.created_at, m.model_id"
        ).fetchall()
    return [ModelRecord(r[0], r[1], int(r[2]), r[3], r[4], int(r[5])) for r in rows]
