"""What the explorer browses: workspace status, crops, species summaries, the embedding map."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.errors import OceanidError


@dataclass
class WorkspaceStatus:
    home: Path
    has_catalog: bool = False
    images: int = 0
    crops: int = 0
    species: int = 0
    model_id: str | None = None
    generation: str | None = None
    has_index: bool = False
    message: str = ""  # what to do next


@dataclass
class CropRef:
    annotation_id: int
    species: str
    split: str | None
    crop: Path


@dataclass
class SpeciesInfo:
    name: str
    genus: str | None
    family: str | None
    count: int
    status: str  # known | holdout | added | excluded
    examples: list[Path] = field(default_factory=list)
    nearest: list[Path] = field(default_factory=list)  # crops closest to the prototype
    confusable: list[tuple[str, float]] = field(default_factory=list)


def status(ws) -> WorkspaceStatus:
    from index.generations import current_generation

    out = WorkspaceStatus(ws.home)
    if not ws.catalog.exists():
        out.message = "This workspace is empty: run `oceanid demo`, or ingest data with `oceanid ingest ...`."
        return out
    out.has_catalog = True
    with ws.catalog.read() as con:
        out.images = con.execute("SELECT count(*) FROM images").fetchone()[0]
        out.crops, out.species = con.execute("SELECT count(*), count(DISTINCT concept) FROM annotations").fetchone()
    if not out.crops:
        out.message = "No crops yet: run `oceanid demo`, or ingest data with `oceanid ingest ...`."
        return out
    out.model_id = ws.catalog.get_meta("current_model")
    if out.model_id is None:
        out.message = "No model yet: run `oceanid split`, `oceanid train`, `oceanid embed`, `oceanid index build`."
        return out
    try:
        out.generation = current_generation(ws.home, out.model_id)
    except OceanidError:
        out.generation = None
    out.has_index = out.generation is not None
    out.message = "" if out.has_index else (
        f"Model {out.model_id} has no index yet: run `oceanid embed` and `oceanid index build`.")
    return out


def crops(ws, model: str | None = None, limit: int = 5000) -> list[CropRef]:
    """Crops that have a vector for the model, for the explorer's pickers."""
    model_id = ws.current_model(model)
    with ws.catalog.read() as con:
        rows = con.execute(
            "SELECT a.annotation_id, a.concept, a.split, a.crop_path FROM annotations a JOIN embeddings e "
            "USING (annotation_id) WHERE e.model_id = ? ORDER BY a.annotation_id LIMIT ?", [model_id, limit]).fetchall()
    return [CropRef(i, c, s, ws.home / p) for i, c, s, p in rows]


def species_summary(ws, model: str | None = None, examples: int = 4, nearest: int = 4,
                    confusable: int = 3) -> list[SpeciesInfo]:
    from index.embeddings import load_embeddings

    engine = ws.engine(model)
    with ws.catalog.read() as con:
        rows = con.execute(
            "SELECT species, any_value(genus), any_value(family), count(*), "
            "list(crop_path ORDER BY annotation_id)[1:?], bool_or(split = 'holdout'), bool_or(split IS NOT NULL) "
            "FROM crop_meta GROUP BY species ORDER BY species", [examples]).fetchall()
    ids, vectors, labels = load_embeddings(ws.catalog, engine.model_id, with_labels=True)
    with ws.catalog.read() as con:
        paths = dict(con.execute("SELECT annotation_id, crop_path FROM annotations").fetchall())
    protos = engine.prototypes
    sims = protos.vectors @ protos.vectors.T
    out = []
    for name, genus, family, count, example_paths, held, used in rows:
        if name in protos.names:
            status = engine.origins.get(name, "train").replace("train", "known")
            owner = protos.names.index(name)
            mine = labels == name
            near: list[Path] = []
            if mine.any():
                score = (vectors[mine] @ protos.rows_of(name).T).max(1)
                near = [ws.home / paths[i] for i in ids[mine][np.argsort(-score)[:nearest]]]
            rows_mine = protos.owners == owner
            best = {}
            for j, other in enumerate(protos.owners):
                if other != owner:
                    best[int(other)] = max(best.get(int(other), -1.0), float(sims[rows_mine][:, j].max()))
            pairs = sorted(best.items(), key=lambda kv: -kv[1])[:confusable]
            conf = [(protos.names[o], s) for o, s in pairs]
        else:
            status, near, conf = ("holdout" if held else "excluded"), [], []
        out.append(SpeciesInfo(name, genus, family, int(count), status,
                               [ws.home / p for p in example_paths if p], near, conf))
    return out


def embedding_map(ws, method: str = "pca", max_points: int = 3000, model: str | None = None,
                  seed: int = 0) -> list[dict]:
    """2-D coordinates of (a sample of) the crops: x, y, species, status, split, crop."""
    from app.report import project_2d
    from index.embeddings import load_embeddings

    engine = ws.engine(model)
    ids, vectors, labels = load_embeddings(ws.catalog, engine.model_id, with_labels=True)
    if len(ids) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(ids), max_points, replace=False))
        ids, vectors, labels = ids[keep], vectors[keep], labels[keep]
    with ws.catalog.read() as con:
        meta = {r[0]: r[1:] for r in con.execute("SELECT annotation_id, split, crop_path FROM annotations").fetchall()}
    xy = project_2d(vectors, method, seed) if len(ids) else np.zeros((0, 2))
    out = []
    for (x, y), i, name in zip(xy, ids, labels):
        split, path = meta.get(int(i), (None, None))
        status = ("added" if engine.origins.get(name) == "added" else "holdout" if split == "holdout"
                  else "known" if name in engine.prototypes.names else "excluded")
        out.append({"x": float(x), "y": float(y), "species": str(name), "status": status, "split": split,
                    "crop": ws.home / path if path else None})
    return out
