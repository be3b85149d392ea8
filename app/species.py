"""Adding a species from a few examples, and removing it, without retraining.

The examples become catalog crops (source ``added``, split ``support``),
their vectors join the catalog and a new index generation, and their mean
becomes the species' prototype. OOD thresholds are recalibrated when the engine
next loads (they are always fitted on the current prototypes).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from app.engine import Engine
from app.queries import ImageInput, decode, image_bytes_name
from index.catalog import Catalog
from index.crops import CropConfig
from index.embeddings import store_embeddings, store_prototypes
from index.errors import BadImage, InvalidInput, NotFound
from index.ingest import ingest_records, upsert_taxa
from index.records import BoxRecord, ImageRecord, Taxon

log = logging.getLogger(__name__)

SUPPORT = "support"
FULL_FRAME = (0.0, 0.0, 1e12, 1e12)  # clipped to the image: the whole example is the crop


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "species"


def bump_version(catalog: Catalog, model_id: str) -> None:
    key = f"prototypes_version:{model_id}"
    with catalog.write() as con:
        row = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, str(int(row[0]) + 1 if row else 1)])


def add_species(engine: Engine, catalog: Catalog, home: Path, name: str, items: list[ImageInput],
                genus: str | None = None, family: str | None = None, crop: CropConfig = CropConfig()) -> dict:
    """Add species ``name`` from example images; returns what was added and what was skipped.

    Raises InvalidInput when the name already has prototypes or no example is readable.
    """
    from index.generations import publish
    from embedder.model import config_hash

    name = (name or "").strip()
    if not name:
        raise InvalidInput("a species needs a name")
    if name in engine.prototypes.names:
        raise InvalidInput(f"species {name!r} already exists; pick another name or `oceanid species remove` it first")
    folder = home / "sources" / "added" / _slug(name)
    folder.mkdir(parents=True, exist_ok=True)
    records, skipped = [], []
    for n, item in enumerate(items):
        label = image_bytes_name(item, n)
        try:
            image = decode(item, label)
        except BadImage as exc:
            skipped.append((label, str(exc)))
            continue
        path = folder / f"{len(list(folder.iterdir())):04d}.png"
        image.save(path)
        records.append(ImageRecord("added", f"{_slug(name)}::{path.name}", path,
                                   boxes=(BoxRecord(name, *FULL_FRAME, group_key=f"added:{name}", split=SUPPORT),)))
    if not records:
        raise InvalidInput(f"none of the {len(items)} example image(s) could be read: {skipped[0][1] if skipped else 'no images given'}")
    taxa = [Taxon(name, "species" if genus else None, genus or family)]
    if genus:
        taxa.append(Taxon(genus, "genus", family))
    if family:
        taxa.append(Taxon(family, "family", None))
    upsert_taxa(catalog, taxa)
    report = ingest_records(catalog, home, "added", records, crop=crop)
    skipped += report.skipped
    with catalog.read() as con:
        rows = con.execute("SELECT annotation_id, crop_path FROM annotations WHERE concept = ? AND split = ? "
                           "AND crop_path IS NOT NULL ORDER BY 1", [name, SUPPORT]).fetchall()
    from embedder.encoding import encode_paths

    encoded = encode_paths(engine.model, [home / p for _, p in rows], device=engine.device, progress=False, workers=0)
    ids = np.asarray([rows[i][0] for i in encoded.ok], dtype=np.int64)
    if ids.size == 0:
        raise InvalidInput(f"no example of {name!r} could be embedded")
    store_embeddings(catalog, engine.model_id, ids, encoded.vectors)
    prototypes = engine.prototypes.with_class(name, encoded.vectors)
    store_prototypes(catalog, engine.model_id, prototypes, "added", only=[name])
    engine.index.add(ids, encoded.vectors)
    generation, _ = publish(home, engine.model_id, engine.index, config_hash(home / "models" / engine.model_id))
    bump_version(catalog, engine.model_id)
    log.info("added species %s from %d examples (generation %s)", name, ids.size, generation)
    return {"species": name, "examples": int(ids.size), "skipped": [{"item": i, "reason": r} for i, r in skipped],
            "generation": generation}


def remove_species(engine: Engine, catalog: Catalog, home: Path, name: str) -> dict:
    """Remove a species added with :func:`add_species` (its prototypes, vectors and crops)."""
    from index.generations import publish
    from embedder.model import config_hash

    if name not in engine.prototypes.names:
        raise NotFound(f"no species {name!r}; known: {', '.join(engine.prototypes.names)}")
    if engine.origins.get(name) != "added":
        raise InvalidInput(f"{name!r} was learned in training, not added; hold it out with "
                           "`oceanid split --holdout` and retrain instead")
    with catalog.write() as con:
        ids = [r[0] for r in con.execute("SELECT annotation_id FROM annotations WHERE concept = ? AND split = ?",
                                         [name, SUPPORT]).fetchall()]
        con.execute("DELETE FROM embeddings WHERE annotation_id IN (SELECT unnest(?))", [ids])
        con.execute("DELETE FROM annotations WHERE annotation_id IN (SELECT unnest(?))", [ids])
        con.execute("DELETE FROM images WHERE source = 'added' AND image_id NOT IN (SELECT image_id FROM annotations)")
        con.execute("DELETE FROM prototypes WHERE model_id = ? AND concept = ?", [engine.model_id, name])
    removed = engine.index.remove(np.asarray(ids, dtype=np.int64))
    generation, _ = publish(home, engine.model_id, engine.index, config_hash(home / "models" / engine.model_id))
    bump_version(catalog, engine.model_id)
    return {"species": name, "removed_vectors": int(removed), "generation": generation}
