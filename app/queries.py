"""The three questions (what is it, is it new, what looks like it) and adding a species.

Thin compositions over :mod:`app.engine`; the maths lives in ``index`` and
``embedder``. Inputs are images as paths, bytes or PIL images.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from app.engine import Engine
from index.catalog import Catalog
from index.errors import BadImage, InvalidInput, NotFound
from index.filters import parse_filter
from index.imaging import decode_bytes, open_image

log = logging.getLogger(__name__)

ImageInput = Union[Path, str, bytes]

HIT_COLUMNS = ("annotation_id", "species", "genus", "family", "depth_m", "timestamp", "latitude",
               "longitude", "split", "source", "crop_path")


@dataclass
class Identification:
    name: str  # file name, or "upload N"
    species: str | None = None  # top species, or "unknown"
    score: float | None = None  # cosine to the top species' prototype
    unknown: bool = False
    top: list[tuple[str, float]] = field(default_factory=list)
    ood: dict[str, dict] = field(default_factory=dict)  # scorer -> score, threshold, unknown
    scorer: str | None = None  # the scorer that decided "unknown"
    error: str | None = None  # one line when the image could not be read

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CropHit:
    annotation_id: int
    score: float
    species: str
    genus: str | None
    family: str | None
    depth_m: float | None
    timestamp: object
    latitude: float | None
    longitude: float | None
    split: str | None
    source: str
    crop: Path | None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["crop"] = str(self.crop) if self.crop else None
        out["timestamp"] = self.timestamp.isoformat() if hasattr(self.timestamp, "isoformat") else self.timestamp
        return out


def decode(item: ImageInput, name: str):
    """A path, bytes or PIL image -> upright RGB PIL image. Raises BadImage."""
    if isinstance(item, bytes):
        return decode_bytes(item, name)
    if hasattr(item, "mode") and hasattr(item, "size"):
        return item
    return open_image(item)


def identify(engine: Engine, items: list[ImageInput], names: list[str] | None = None, k: int = 5,
             batch_size: int = 64) -> list[Identification]:
    """Top-k species and every OOD score for each image; unreadable ones get ``error``."""
    names = names or [Path(i).name if isinstance(i, (str, Path)) else f"upload {n + 1}" for n, i in enumerate(items)]
    out = [Identification(name) for name in names]
    for start in range(0, len(items), batch_size):
        images, where = [], []
        for n in range(start, min(start + batch_size, len(items))):
            try:
                images.append(decode(items[n], names[n]))
                where.append(n)
            except BadImage as exc:
                out[n].error = str(exc)
        if not images:
            continue
        vectors = engine.embed(images)
        tops = engine.prototypes.topk(vectors, k)
        scores = engine.ood(vectors)
        for row, n in enumerate(where):
            result = out[n]
            result.top = tops[row]
            result.ood = {
                s: {"score": float(v[row]), "threshold": engine.thresholds[s],
                    "unknown": bool(v[row] < engine.thresholds[s])}
                for s, v in scores.items()
            }
            result.scorer = engine.scorer
            result.unknown = result.ood[engine.scorer]["unknown"]
            result.score = tops[row][0][1]
            result.species = "unknown" if result.unknown else tops[row][0][0]
    return out


def allowed_ids(catalog: Catalog, where: str | None) -> np.ndarray | None:
    """Catalog ids matching a filter (None = no filter). Raises FilterError."""
    if not where or not where.strip():
        return None
    compiled = parse_filter(where)
    with catalog.read() as con:
        rows = con.execute(f"SELECT annotation_id FROM crop_meta WHERE {compiled.sql}", compiled.params).fetchall()
    return np.asarray([r[0] for r in rows], dtype=np.int64)


def crop_vector(catalog: Catalog, model_id: str, annotation_id: int) -> np.ndarray:
    with catalog.read() as con:
        row = con.execute("SELECT vector FROM embeddings WHERE model_id = ? AND annotation_id = ?",
                          [model_id, int(annotation_id)]).fetchone()
    if row is None:
        raise NotFound(f"crop {annotation_id} has no vector for model {model_id}",
                       hint="check the id with `oceanid search --json`, or run `oceanid embed`")
    return np.asarray(row[0], dtype=np.float32)[None, :]


def hits_metadata(catalog: Catalog, home: Path, hits) -> list[CropHit]:
    if not hits:
        return []
    ids = [h.id for h in hits]
    with catalog.read() as con:
        rows = con.execute(f"SELECT {', '.join(HIT_COLUMNS)} FROM crop_meta WHERE annotation_id IN "
                           "(SELECT unnest(?))", [ids]).fetchall()
    meta = {r[0]: r for r in rows}
    out = []
    for hit in hits:
        r = meta.get(hit.id)
        if r is None:  # in the index but no longer in the catalog
            continue
        out.append(CropHit(r[0], hit.score, *r[1:10], home / r[10] if r[10] else None))
    return out


def search(engine: Engine, catalog: Catalog, home: Path, query, k: int = 10,
           where: str | None = None) -> list[CropHit]:
    """The k nearest crops to an image or a catalog crop id, inside an optional filter.

    The filter is evaluated in DuckDB and applied inside FAISS as an id selector,
    so a filtered answer is exact. A filter that matches nothing gives [].
    """
    if isinstance(k, bool) or k < 1:
        raise InvalidInput(f"--k must be at least 1, got {k}")
    exclude = None
    if isinstance(query, (int, np.integer)):
        vector, exclude = crop_vector(catalog, engine.model_id, int(query)), int(query)
    else:
        vector = engine.embed([decode(query, "query")])
    allowed = allowed_ids(catalog, where)
    if allowed is not None and exclude is not None:
        allowed = allowed[allowed != exclude]
    if allowed is not None and allowed.size == 0:
        return []
    hits = engine.index.search(vector, k + (exclude is not None), allowed_ids=allowed)[0]
    hits = [h for h in hits if h.id != exclude][:k]
    return hits_metadata(catalog, home, hits)


def image_bytes_name(item: ImageInput, n: int) -> str:
    return Path(item).name if isinstance(item, (str, Path)) else f"example {n + 1}"

