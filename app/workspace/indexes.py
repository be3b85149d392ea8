"""A model's index generations: listing models, and build / verify / prune / rollback.

The build itself (prototypes, then a generation from the stored vectors) is
:func:`app.workspace.pipeline.build_index`; this module holds the checks around the
generations a user asks for by name. Their results are in :mod:`app.workspace.index_results`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.workspace.index_results import GenerationChange, ModelInfo, VerifyResult
from index.catalog.catalog import Catalog
from index.catalog.embeddings import content_digest, list_models, load_embeddings, model_record
from index.errors import EmptyIndex, IndexMismatch
from index.home import Home
from index.vectors.generation_history import prune, rollback
from index.vectors.generations import DEFAULT_KEEP, current_generation, current_manifest, model_dir, verify

if TYPE_CHECKING:
    from app.workspace.engine_cache import Engines
    from app.workspace.writer import HomeWriter


def models(catalog: Catalog, home: Home) -> list[ModelInfo]:
    """Every model of the catalog, with its live generation and its stale mark."""
    current = catalog.current_model()
    return [
        ModelInfo(
            m.model_id,
            m.backbone,
            m.dim,
            m.vectors,
            m.model_id == current,
            current_generation(home.root, m.model_id),
            catalog.model_stale(m.model_id),
        )
        for m in list_models(catalog)
    ]


def verify_generation(catalog: Catalog, home: Home, model_id: str, generation: str | None = None) -> VerifyResult:
    """Check a generation (default: the live one) against its manifest and the model; the live
    one also against the catalog (:func:`app.workspace.agreement.check_live`).
    Raises EmptyIndex when the model has none, IndexMismatch when it does not verify."""
    from app.workspace.agreement import check_live

    record = model_record(catalog, model_id)
    live = current_generation(home.root, model_id)
    name = generation or live
    if name is None:
        raise EmptyIndex(f"no index generation for model {model_id}", hint="run `oceanid index build`")
    try:
        if name == live:
            return VerifyResult(name, True, check_live(catalog, home, model_id, name, record.config_hash, record.dim))
        manifest = verify(model_dir(home.root, model_id) / name, model_id, record.config_hash, record.dim)
    except IndexMismatch as exc:  # a rebuild writes a new generation: it mends only the live one
        folder = model_dir(home.root, model_id)
        if not (folder / name).is_dir():
            have = sorted(p.name for p in folder.glob("gen-*") if p.is_dir())
            exc.hint = f"{model_id} has {', '.join(have[-5:]) or 'no generation'} (live: {live or 'none'})"
        elif name != live:
            exc.hint = (
                f"{name} is not the live generation ({live or 'none'}), so no answer uses it; "
                "`oceanid index prune` deletes old generations, `oceanid index verify` checks the live one"
            )
        raise
    return VerifyResult(name, True, manifest)


def prune_generations(home: Home, model_id: str, keep: int | None = None) -> GenerationChange:
    """Delete all but the newest ``keep`` generations (default 3; never the live one)."""
    removed = prune(home.root, model_id, DEFAULT_KEEP if keep is None else keep)
    return GenerationChange(model_id, current_generation(home.root, model_id), tuple(removed))


def rollback_generation(catalog: Catalog, home: Home, model_id: str) -> GenerationChange:
    """Make the generation before the live one live again, verified like any load; the change
    warns when that generation holds other vectors than the catalog does now."""
    record = model_record(catalog, model_id)
    current = rollback(home.root, model_id, record.config_hash, record.dim)
    _, manifest = current_manifest(home.root, model_id, record.config_hash, record.dim)
    ids, vectors = load_embeddings(catalog, model_id)
    warning = None
    if manifest.content != content_digest(ids, vectors):
        warning = (
            f"{current} holds {manifest.count} vectors, not the {len(ids)} stored now (an older state): "
            "searches answer from it until `oceanid index build`"
        )
    return GenerationChange(model_id, current, warning=warning)


def rollback_home(
    writer: HomeWriter, engines: Engines, catalog: Catalog, home: Home, model: str | None
) -> GenerationChange:
    """:func:`rollback_generation` of ``model`` (else the current one) under the home's writer lock;
    the loaded engines are forgotten afterwards, also on failure."""
    with writer:
        try:
            return rollback_generation(catalog, home, engines.model(model))
        finally:
            engines.engines.clear()
