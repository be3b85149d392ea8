"""The catalog side of similarity search: which ids a filter allows, a stored crop's
vector, and the metadata of the hits FAISS returns.

The filter is compiled by :mod:`index.catalog.filters` (allow-listed columns, ``?``
parameters only) and evaluated against the ``crop_meta`` view; the ids it
yields are applied inside FAISS as a selector (:mod:`index.vectors.vector_index`), so a
filtered answer is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.catalog.catalog import Catalog
from index.catalog.filters import parse_filter
from index.catalog.vocabulary import check_filter_values
from index.errors import NotFound

HIT_COLUMNS = (
    "annotation_id",
    "species",
    "genus",
    "family",
    "depth_m",
    "timestamp",
    "latitude",
    "longitude",
    "split",
    "source",
    "crop_path",
)


@dataclass
class CropHit:
    """One search answer: a catalog crop, its similarity to the query and its metadata."""

    annotation_id: int
    score: float  # cosine to the query
    species: str
    genus: str | None
    family: str | None
    depth_m: float | None
    timestamp: Any  # datetime or None
    latitude: float | None
    longitude: float | None
    split: str | None
    source: str
    crop: Path | None  # absolute path of the crop file

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["crop"] = str(self.crop) if self.crop else None
        out["timestamp"] = self.timestamp.isoformat() if hasattr(self.timestamp, "isoformat") else self.timestamp
        return out


def allowed_ids(catalog: Catalog, where: str | None) -> np.ndarray | None:
    """Catalog ids ``(m,) int64`` matching a filter; None when there is no filter.

    Raises:
        FilterError: the filter does not parse, names an unknown column, or names a text
            value no crop has (with the nearest existing values: :mod:`index.catalog.vocabulary`).
    """
    if not where or not where.strip():
        return None
    compiled = parse_filter(where)
    with catalog.read() as con:
        check_filter_values(con, compiled)
        rows = con.execute(f"SELECT annotation_id FROM crop_meta WHERE {compiled.sql}", compiled.params).fetchall()
    return np.asarray([r[0] for r in rows], dtype=np.int64)


def crop_vector(catalog: Catalog, model_id: str, annotation_id: int) -> np.ndarray:
    """The stored vector of one crop, ``(1, d) float32``.

    Raises:
        NotFound: the crop has no vector for this model.
    """
    with catalog.read() as con:
        row = con.execute(
            "SELECT vector FROM embeddings WHERE model_id = ? AND annotation_id = ?", [model_id, int(annotation_id)]
        ).fetchone()
    if row is None:
        with catalog.read() as con:
            exists = con.execute("SELECT 1 FROM annotations WHERE annotation_id = ?", [int(annotation_id)]).fetchone()
        if exists is None:
            raise NotFound(f"no crop has id {annotation_id}", hint="find crop ids with `oceanid search --json`")
        raise NotFound(
            f"crop {annotation_id} has no vector for model {model_id}",
            hint="check the id with `oceanid search --json`, or run `oceanid embed`",
        )
    return np.asarray(row[0], dtype=np.float32)[None, :]


def crop_vectors(catalog: Catalog, model_id: str, annotation_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(ids (m,) int64, vectors (m, d) float32)``: the stored vectors of those crops that have one, by id."""
    with catalog.read() as con:
        rows = con.execute(
            "SELECT annotation_id, vector FROM embeddings WHERE model_id = ? AND annotation_id IN "
            "(SELECT unnest(?)) ORDER BY 1",
            [model_id, [int(i) for i in annotation_ids]],
        ).fetchall()
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    return (np.asarray([r[0] for r in rows], dtype=np.int64), np.asarray([r[1] for r in rows], dtype=np.float32))


def hits_metadata(catalog: Catalog, home: Path, hits: Sequence[Any]) -> list[CropHit]:
    """FAISS hits (objects with ``id`` and ``score``) -> :class:`CropHit`, in hit order.

    Hits whose crop is no longer in the catalog are dropped.
    """
    if not hits:
        return []
    ids = [h.id for h in hits]
    with catalog.read() as con:
        rows = con.execute(
            f"SELECT {', '.join(HIT_COLUMNS)} FROM crop_meta WHERE annotation_id IN (SELECT unnest(?))", [ids]
        ).fetchall()
    meta = {r[0]: r for r in rows}
    out = []
    for hit in hits:
        r = meta.get(hit.id)
        if r is None:  # in the index but no longer in the catalog
            continue
        out.append(CropHit(r[0], hit.score, *r[1:10], home / r[10] if r[10] else None))
    return out


def crop_files(catalog: Catalog, home: Path, annotation_ids: Sequence[int]) -> list[Path]:
    """The cached crop file of each catalog crop id, in the given order.

    Raises:
        NotFound: an id is not in the catalog, or its crop was never cut.
    """
    ids = [int(i) for i in annotation_ids]
    if not ids:
        return []
    with catalog.read() as con:
        rows = dict(
            con.execute(
                "SELECT annotation_id, crop_path FROM crop_meta WHERE annotation_id IN (SELECT unnest(?))", [ids]
            ).fetchall()
        )
    missing = [i for i in ids if not rows.get(i)]
    if missing:
        raise NotFound(
            f"no crop with id {missing[0]} in the catalog"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            hint="check the id with `oceanid search --json`",
        )
    return [home / rows[i] for i in ids]


def crop_species(catalog: Catalog, annotation_ids: Sequence[int]) -> dict[int, str]:
    """Each catalog crop id's label (ids no longer in the catalog are left out)."""
    ids = sorted({int(i) for i in annotation_ids})
    if not ids:
        return {}
    with catalog.read() as con:
        rows = con.execute(
            "SELECT annotation_id, concept FROM annotations WHERE annotation_id IN (SELECT unnest(?))", [ids]
        ).fetchall()
    return {int(i): str(c) for i, c in rows}
