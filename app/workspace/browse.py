"""What the explorer browses: workspace status, crops, species summaries, the embedding map.

Each function takes the catalog (and the loaded engine where answers depend on
the model), never the Workspace, so there is no call back into it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.workspace.engine import Engine
from index.catalog.catalog import Catalog
from index.catalog.embeddings import ADDED, crop_rows, load_embeddings
from index.catalog.stats import counts, species_rows
from index.errors import OceanidError
from index.home import Home
from index.records import HOLDOUT
from index.scoring.projection import project_2d

STATUSES = ("known", "holdout", "added", "excluded")


def status_of(name: str, origins: dict[str, str], held_out: bool) -> str:
    """A species' status, the one rule for every page: ``added`` (added from examples),
    ``known`` (learned in training), ``holdout`` (held out of training), ``excluded`` (left
    out of the split). ``origins`` maps each species with prototypes to its origin."""
    origin = origins.get(name)
    if origin == ADDED:
        return "added"
    if origin is not None:
        return "known"
    return "holdout" if held_out else "excluded"


@dataclass
class WorkspaceStatus:
    """What the workspace holds and, in ``message``, what to do next."""

    home: Path
    has_catalog: bool = False
    images: int = 0
    crops: int = 0
    species: int = 0
    model_id: str | None = None
    generation: str | None = None
    has_index: bool = False
    model_stale: str | None = None  # why the current model is stale (re-split under it); None: it is not
    message: str = ""  # what to do next

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "home": str(self.home)}


@dataclass
class CropRef:
    """A catalog crop that has a vector, for the explorer's pickers."""

    annotation_id: int
    species: str
    split: str | None
    crop: Path


@dataclass
class SpeciesInfo:
    """One species for the species page."""

    name: str
    genus: str | None
    family: str | None
    count: int
    status: str  # see status_of
    examples: list[Path] = field(default_factory=list)
    nearest: list[Path] = field(default_factory=list)  # crops closest to the prototype
    confusable: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "examples": [str(p) for p in self.examples], "nearest": [str(p) for p in self.nearest]}


@dataclass
class MapPoint:
    """One crop on the embedding map."""

    x: float
    y: float
    species: str
    status: str
    split: str | None
    crop: Path | None
    projection: str = "pca"  # the projection actually drawn (pca | umap)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(catalog: Catalog, home: Home) -> WorkspaceStatus:
    """What the workspace holds; ``message`` says what to run next when something is missing."""
    from index.vectors.generations import current_generation

    out = WorkspaceStatus(home.root)
    if not catalog.exists():
        out.message = "This workspace is empty: run `oceanid demo`, or ingest data with `oceanid ingest ...`."
        return out
    out.has_catalog = True
    c = counts(catalog)
    out.images, out.crops, out.species = c.images, c.crops, c.species
    if not out.crops:
        out.message = "No crops yet: run `oceanid demo`, or ingest data with `oceanid ingest ...`."
        return out
    out.model_id = catalog.current_model()
    if out.model_id is None:
        out.message = "No model yet: run `oceanid split`, `oceanid train`, `oceanid embed`, `oceanid index build`."
        return out
    try:
        out.generation = current_generation(home.root, out.model_id)
    except OceanidError:
        out.generation = None
    out.has_index = out.generation is not None
    out.model_stale = catalog.model_stale(out.model_id)
    out.message = (
        ""
        if out.has_index
        else (f"Model {out.model_id} has no index yet: run `oceanid embed` and `oceanid index build`.")
    )
    if out.model_stale:
        out.message = (out.message + " " if out.message else "") + (
            f"Model {out.model_id} is stale ({out.model_stale}): retrain it (`oceanid train --model NEW`)."
        )
    return out


def crops(catalog: Catalog, engine: Engine, home: Home, limit: int = 5000) -> list[CropRef]:
    """Crops that have a vector for the engine's model, by id."""
    return [
        CropRef(r.annotation_id, r.concept, r.split, home.resolve(r.crop_path))
        for r in crop_rows(catalog, embedded_by=engine.model_id, limit=limit)
    ]


def species_summary(
    catalog: Catalog, engine: Engine, home: Home, examples: int = 4, nearest: int = 4, confusable: int = 3
) -> list[SpeciesInfo]:
    """Every species: taxa, count, status, example crops; for those with prototypes also the
    crops nearest the prototype and the most confusable species."""
    ids, vectors, labels = load_embeddings(catalog, engine.model_id, with_labels=True)
    paths = {r.annotation_id: r.crop_path for r in crop_rows(catalog)}
    protos = engine.prototypes
    out = []
    for row in species_rows(catalog, examples):
        near: list[Path] = []
        conf: list[tuple[str, float]] = []
        if row.name in protos.names:
            mine = labels == row.name
            if mine.any():
                score = (vectors[mine] @ protos.rows_of(row.name).T).max(1)
                near = [home.resolve(paths[i]) for i in ids[mine][np.argsort(-score)[:nearest]]]
            conf = protos.confusable_with(row.name, confusable)
        out.append(
            SpeciesInfo(
                row.name,
                row.genus,
                row.family,
                row.count,
                status_of(row.name, engine.origins, row.held_out),
                [home.resolve(p) for p in row.examples],
                near,
                conf,
            )
        )
    return out


def embedding_map(
    catalog: Catalog, engine: Engine, home: Home, method: str = "pca", max_points: int = 3000, seed: int = 0
) -> list[MapPoint]:
    """2-D coordinates of (a random sample of) the embedded crops, with species, status and split."""
    ids, vectors, labels = load_embeddings(catalog, engine.model_id, with_labels=True)
    if len(ids) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(ids), max_points, replace=False))
        ids, vectors, labels = ids[keep], vectors[keep], labels[keep]
    meta = {r.annotation_id: r for r in crop_rows(catalog)}
    held = {r.concept for r in meta.values() if r.split == HOLDOUT}
    xy, used = project_2d(vectors, method, seed) if len(ids) else (np.zeros((0, 2)), method)
    out = []
    for (x, y), i, name in zip(xy, ids, labels, strict=False):
        row = meta.get(int(i))
        out.append(
            MapPoint(
                float(x),
                float(y),
                str(name),
                status_of(str(name), engine.origins, name in held),
                row.split if row else None,
                home.resolve(row.crop_path) if row and row.crop_path else None,
                used,
            )
        )
    return out
