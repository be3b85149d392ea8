"""Training, embedding and index building over the catalog.

Long jobs never hold the catalog open while they compute: crops are listed,
the connection closes, the model trains or encodes, and results are written
back in short transactions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.catalog import Catalog
from index.embeddings import (load_embeddings, missing_embeddings, model_record, register_model,
                              store_embeddings, store_prototypes)
from index.errors import EmptyIndex, InvalidInput
from index.prototypes import Prototypes

log = logging.getLogger(__name__)

CHUNK = 4096  # crops embedded and stored per transaction


def labelled_crops(catalog: Catalog, home: Path, split: str) -> list[tuple[Path, str]]:
    with catalog.read() as con:
        rows = con.execute("SELECT crop_path, concept FROM annotations WHERE split = ? AND crop_path IS NOT NULL "
                           "ORDER BY annotation_id", [split]).fetchall()
    return [(home / p, c) for p, c in rows]


def train_model(catalog: Catalog, home: Path, model_id: str, config, resume: bool = False, progress: bool = True):
    """Train ``model_id`` on the train split (validated on val) and record it in the catalog."""
    from embedder.model import config_hash
    from embedder.training import train

    train_items = labelled_crops(catalog, home, "train")
    val_items = labelled_crops(catalog, home, "val")
    if not train_items:
        raise EmptyIndex("no training crops: run `oceanid split` after ingesting")
    if not val_items:
        raise EmptyIndex("no validation crops: run `oceanid split` with --val > 0")
    folder = home / "models" / model_id
    if folder.exists() and (folder / "config.json").exists() and not resume:
        raise InvalidInput(f"model {model_id!r} exists; use --resume to continue it or --model to name a new one")
    result = train(config, train_items, val_items, folder, resume=resume, progress=progress)
    register_model(catalog, model_id, config_hash(folder), config.dim, config.backbone)
    catalog.set_meta("current_model", model_id)
    return result


@dataclass
class EmbedReport:
    model_id: str
    embedded: int = 0
    already: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"model_id": self.model_id, "embedded": self.embedded, "already": self.already,
                "failed": [{"item": i, "reason": r} for i, r in self.failed]}


def embed_crops(catalog: Catalog, home: Path, model_id: str, batch_size: int = 64, device: str = "auto",
                progress: bool = True) -> EmbedReport:
    """Embed every crop that has no vector for this model yet; unreadable crops are reported."""
    from embedder.encoding import encode_paths
    from embedder.model import config_hash, load_model

    folder = home / "models" / model_id
    model = load_model(folder)
    register_model(catalog, model_id, config_hash(folder), model.config.dim, model.config.backbone)
    todo = missing_embeddings(catalog, model_id)
    with catalog.read() as con:
        total = con.execute("SELECT count(*) FROM annotations WHERE crop_path IS NOT NULL").fetchone()[0]
    report = EmbedReport(model_id, already=total - len(todo))
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start:start + CHUNK]
        result = encode_paths(model, [home / p for _, p in chunk], batch_size=batch_size, device=device,
                              progress=progress)
        ids = np.asarray([chunk[i][0] for i in result.ok], dtype=np.int64)
        report.embedded += store_embeddings(catalog, model_id, ids, result.vectors)
        report.failed += result.failed
    return report


def fit_prototypes(catalog: Catalog, model_id: str, n_centres: int = 1, seed: int = 0) -> Prototypes:
    """Prototypes of the trained species from the train split (added species keep theirs)."""
    _, vectors, labels = load_embeddings(catalog, model_id, ("train",), with_labels=True)
    if len(vectors) == 0:
        raise EmptyIndex(f"no training vectors for model {model_id}: run `oceanid embed`")
    prototypes = Prototypes.fit(vectors, labels, n_centres=n_centres, seed=seed)
    with catalog.write() as con:
        con.execute("DELETE FROM prototypes WHERE model_id = ? AND origin = 'train'", [model_id])
    store_prototypes(catalog, model_id, prototypes, "train")
    return prototypes


def build_index(catalog: Catalog, home: Path, model_id: str, kind: str = "auto", device: str = "cpu",
                n_centres: int = 1, only_if_stale: bool = False) -> dict:
    """Write a new index generation from the catalog's vectors (no re-embedding) and swap it live."""
    from index.generations import current_generation, model_dir, publish, read_manifest
    from index.vectors import VectorIndex

    record = model_record(catalog, model_id)
    ids, vectors = load_embeddings(catalog, model_id)
    if len(ids) == 0:
        raise EmptyIndex(f"model {model_id} has no vectors yet", hint="run `oceanid embed` first")
    fit_prototypes(catalog, model_id, n_centres)
    if only_if_stale:
        name = current_generation(home, model_id)
        if name is not None:
            manifest = read_manifest(model_dir(home, model_id) / name)
            if manifest.count == len(ids) and manifest.config_hash == record["config_hash"]:
                return {"generation": name, "built": False, **manifest.to_dict()}
    index = VectorIndex.build(ids, vectors, kind=kind, device=device)
    generation, manifest = publish(home, model_id, index, record["config_hash"])
    return {"generation": generation, "built": True, **manifest.to_dict()}
