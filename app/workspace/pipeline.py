"""Training, embedding, prototype fitting and index building over the catalog.

Long jobs never hold the catalog open while they compute: crops are listed,
the connection closes, the model trains or encodes, and results are written
back in short transactions. Every new index generation is published through
:func:`publish_generation`, which prunes old ones afterwards.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from app.workspace.index_results import BuildResult
from app.workspace.splitting import SEEN_CROPS
from index.catalog.catalog import Catalog
from index.catalog.embeddings import (
    content_digest,
    crop_count,
    labelled_crops,
    load_embeddings,
    load_prototypes,
    missing_embeddings,
    model_record,
    register_model,
    replace_trained_prototypes,
    split_ids,
    store_added_prototypes,
    store_embeddings,
    trained_prototypes_match,
)
from index.errors import EmptyIndex, InvalidInput, ModelError, NotFound
from index.files import write_json_atomic
from index.home import Home
from index.records import SUPPORT, TRAIN, VAL
from index.scoring.priors import PriorsRequest
from index.scoring.prototypes import Prototypes

if TYPE_CHECKING:
    from pathlib import Path

    from embedder.train_config import TrainConfig
    from embedder.training import TrainResult
    from index.catalog.decisions import Decision
    from index.vectors.generations import Manifest
    from index.vectors.vector_index import VectorIndex

log = logging.getLogger(__name__)

CHUNK = 4096  # crops embedded and stored per transaction


def train_model(
    catalog: Catalog, home: Home, model_id: str, config: TrainConfig, resume: bool = False, progress: bool = True
) -> TrainResult:
    """Train ``model_id`` on the train split (validated on val) and record it in the catalog."""
    from embedder.model import config_hash, read_config
    from embedder.training import train

    train_items = [(home.resolve(p), c) for p, c in labelled_crops(catalog, TRAIN)]
    val_items = [(home.resolve(p), c) for p, c in labelled_crops(catalog, VAL)]
    if not train_items:
        raise EmptyIndex("no training crops: run `oceanid split` after ingesting")
    if not val_items:
        raise EmptyIndex("no validation crops: run `oceanid split` with --val > 0")
    folder = home.model(model_id)
    if folder.exists() and (folder / "config.json").exists() and not resume:
        raise InvalidInput(f"model {model_id!r} exists; use --resume to continue it or --model to name a new one")
    seen = split_ids(catalog, (TRAIN, VAL))  # read before training: the crops this model learns and selects on
    subtrees = None
    if config.label_rank == "subtree":  # the classes a label's subtree holds, from the catalog's lineages
        from index.catalog.taxa import tree
        from index.metrics.label_rank import subtrees as label_subtrees

        subtrees = label_subtrees(sorted({c for _, c in train_items}), tree(catalog))
        if subtrees:
            log.info("label ranks: %s", "; ".join(f"{k} > {', '.join(v)}" for k, v in subtrees.items()))
        else:
            log.warning("--label-rank subtree: no class holds another in the catalog's lineages; the loss is flat")
    result = train(config, train_items, val_items, folder, resume=resume, progress=progress, subtrees=subtrees)
    if resume and (folder / SEEN_CROPS).is_file():  # a resumed model still knows what it saw before
        before = json.loads((folder / SEEN_CROPS).read_text(encoding="utf-8"))["crops"]
        seen = np.union1d(seen, np.asarray(before, dtype=np.int64))
    write_json_atomic(folder / SEEN_CROPS, {"crops": seen.tolist()})
    export_encoder(folder, [p for p, _ in val_items])
    register_model(catalog, model_id, config_hash(folder), read_config(folder).vector_dim, config.backbone)
    if not resume:  # trained from the start on the split as it is now (a resumed one keeps its mark)
        catalog.set_model_stale(model_id, None)
    catalog.set_current_model(model_id)
    return result


def export_encoder(folder: Path, crops: list[Path]) -> None:
    """Write the model's ONNX export beside its weights (``embedder.export``), checked on the first
    validation crops. A failed export is one warning: queries then run the model on torch."""
    from embedder.export import export_model

    try:
        export_model(folder, crops)
    except ModelError as exc:
        log.warning("%s: queries will run on torch", exc)


def export_existing(catalog: Catalog, home: Home, model_id: str, int8: bool = False):
    """``oceanid models export``: export a trained model (one from before exports, or again),
    checked on the first validation crops. Returns ``embedder.export.ExportResult``.
    Raises NotFound (no model folder), ModelError (the export failed)."""
    from embedder.export import export_model

    folder = home.model(model_id)
    if not (folder / "config.json").is_file():
        raise NotFound(f"model folder {folder} is missing", hint="train it with `oceanid train`")
    return export_model(folder, [home.resolve(p) for p, _ in labelled_crops(catalog, VAL)], int8=int8)


@dataclass
class EmbedReport:
    """What ``oceanid embed`` did."""

    model_id: str
    embedded: int = 0
    already: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (crop, one-line reason)

    def to_dict(self) -> dict:
        return {
            "model_id": self.model_id,
            "embedded": self.embedded,
            "already": self.already,
            "failed": [{"item": i, "reason": r} for i, r in self.failed],
        }


def embed_crops(
    catalog: Catalog, home: Home, model_id: str, batch_size: int = 64, device: str = "auto", progress: bool = True
) -> EmbedReport:
    """Embed every crop that has no vector for this model yet; unreadable crops are reported."""
    from embedder.encoding import encode_paths
    from embedder.model import config_hash, load_model

    folder = home.model(model_id)
    model = load_model(folder)
    register_model(catalog, model_id, config_hash(folder), model.config.vector_dim, model.config.backbone)
    todo = missing_embeddings(catalog, model_id)
    report = EmbedReport(model_id, already=crop_count(catalog) - len(todo))
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        result = encode_paths(
            model, [home.resolve(p) for _, p in chunk], batch_size=batch_size, device=device, progress=progress
        )
        ids = np.asarray([chunk[i][0] for i in result.ok], dtype=np.int64)
        report.embedded += store_embeddings(catalog, model_id, ids, result.vectors)
        report.failed += result.failed
    return report


def fit_prototypes(
    catalog: Catalog,
    model_id: str,
    n_centres: int = 1,
    seed: int = 0,
    home: Home | None = None,
    priors: PriorsRequest | None = None,
) -> tuple[Prototypes, bool]:
    """Fit the trained species' prototypes from the train split (added species keep theirs).

    They are written (and the prototypes version bumped) only when they differ from
    the stored ones; the engine's decision for them is then stored too (:func:`decide`).
    Returns (prototypes, whether anything was written). With ``home`` the OOD scorers fitted
    for the decision are stored there as well (``index.scoring.scorer_store``), so loading reads them.
    """
    _, vectors, labels = load_embeddings(catalog, model_id, (TRAIN,), with_labels=True)
    if len(vectors) == 0:
        raise EmptyIndex(f"no training vectors for model {model_id}: run `oceanid embed`")
    prototypes = Prototypes.fit(vectors, labels, n_centres=n_centres, seed=seed)
    written = not trained_prototypes_match(catalog, model_id, prototypes)
    if written:
        replace_trained_prototypes(catalog, model_id, prototypes)
    added = fit_added_prototypes(catalog, model_id)
    decided = decide(catalog, model_id, home=home, priors=priors)
    return prototypes, added or written or decided


def decide(
    catalog: Catalog,
    model_id: str,
    force: bool = False,
    home: Home | None = None,
    priors: PriorsRequest | None = None,
) -> bool:
    """Store the engine's decision (scorer, thresholds, temperature, class priors) for the model's
    stored trained prototypes, unless one is stored for exactly them (``force``: decide again).
    ``priors`` asks for other class priors: when they differ from the stored ones the decision is
    made again (the rank threshold is chosen on the prior-adjusted probabilities); a stored decision
    without priors gets the default ones.
    With ``home``, the scorers the engine reads are stored too when missing (the known species'
    OOD scorers, and the added species' scorer): loading only reads them.
    Returns whether a decision was written (``app.workspace.decisions.fit_decision``)."""
    from app.workspace.decisions import fit_decision, trained_only
    from app.workspace.stored_scorers import store_added_scorer, store_known_scorers
    from index.catalog.decisions import load_decision, prototypes_digest, store_decision

    stored, origins = load_prototypes(catalog, model_id)
    trained = trained_only(stored, origins)
    decision = load_decision(catalog, model_id)
    written = False
    stale = (
        force
        or decision is None
        or decision.prototypes_digest != prototypes_digest(trained)
        or rank_choice_stale(catalog, decision, trained)
        or (decision.counts is None and counts_missing(catalog, model_id))  # a decision from before counts
    )
    if not stale and (priors is not None or decision.priors is None):  # other priors: decide again (ranks too)
        _, _, train_l = load_embeddings(catalog, model_id, (TRAIN,), with_labels=True)
        stale = (priors or PriorsRequest()).resolve(train_l, trained.names, decision.priors) != decision.priors
    if stale:
        previous = decision.priors if decision is not None else None
        decision = fit_decision(catalog, model_id, trained, home=home, priors=priors, previous=previous)
        store_decision(catalog, decision)
        written = True
    if home is not None:
        store_known_scorers(catalog, home, model_id, trained, decision)
        store_added_scorer(catalog, home, model_id)
    return written


def counts_missing(catalog: Catalog, model_id: str) -> bool:
    """Whether the model has validation crops to fit the count confusion on (a stored decision without one
    is decided again)."""
    return bool(len(load_embeddings(catalog, model_id, (VAL,), with_labels=True)[1]))


def rank_choice_stale(catalog: Catalog, decision: Decision, trained: Prototypes) -> bool:
    """Whether the decision's rank threshold must be chosen again: it predates the rank
    threshold or the measured placement of unknown crops, or the trained species' lineages
    changed since (a `taxa import`)."""
    from index.catalog.taxa import tree
    from index.metrics.ranks import tree_digest
    from index.taxonomy import rank_table

    if decision.rank_choice is None or decision.unknown_ranks is None:
        return True
    return decision.rank_choice.tree_digest != tree_digest(rank_table(trained.names, tree(catalog)).lineages)


def fit_added_prototypes(catalog: Catalog, model_id: str) -> bool:
    """Give every added species (support crops) that has no prototype for this model one: the
    mean of its support vectors. This is how added species survive a new model: ``embed``
    re-embeds their crops with it, and ``index build`` calls this. Returns whether any was written."""
    _, vectors, labels = load_embeddings(catalog, model_id, (SUPPORT,), with_labels=True)
    if len(vectors) == 0:
        return False
    stored = set(load_prototypes(catalog, model_id)[0].names)
    missing = sorted(set(labels.tolist()) - stored)
    if not missing:
        return False
    keep = np.isin(labels, missing)
    store_added_prototypes(catalog, model_id, Prototypes.fit(vectors[keep], labels[keep]), missing)
    log.info("prototypes of added species for model %s: %s", model_id, ", ".join(missing))
    return True


def live_manifest(home: Home, model_id: str) -> tuple[str | None, Manifest | None]:
    """(live generation name, its manifest), or (None, None) when none was published."""
    from index.vectors.generations import current_generation, model_dir, read_manifest

    name = current_generation(home.root, model_id)
    if name is None:
        return None, None
    return name, read_manifest(model_dir(home.root, model_id) / name)


def catalog_content(catalog: Catalog, model_id: str) -> str:
    """The content digest of every stored vector of a model (what a full build would index)."""
    return content_digest(*load_embeddings(catalog, model_id))


def publish_generation(
    home: Home, model_id: str, index: VectorIndex, model_config_hash: str, content: str = ""
) -> tuple[str, Manifest, list[str]]:
    """Publish ``index`` as the live generation, then prune old ones (keep the newest
    ``index.vectors.generations.DEFAULT_KEEP``); returns (generation, manifest, generations pruned)."""
    from index.vectors.generation_history import prune
    from index.vectors.generations import publish

    generation, manifest = publish(home.root, model_id, index, model_config_hash, content=content)
    return generation, manifest, prune(home.root, model_id)


def build_index(
    catalog: Catalog,
    home: Home,
    model_id: str,
    kind: str = "auto",
    device: str = "cpu",
    rebuild: bool = True,
    shards: int = 1,
) -> BuildResult:
    """Write a new index generation from the catalog's vectors (no re-embedding) and swap it live.

    ``shards`` >= 2 builds that many indexes by id hash (index/vectors/shards.py), one sub-folder each.
    With ``rebuild=False`` nothing is written when the live generation already holds
    exactly these vectors: same model config, the same vector count and content digest (ids +
    vectors), and the kind and shard count asked for; ``disagreed`` says how it differed from
    the catalog when it did (:func:`app.workspace.agreement.disagreement`).
    """
    from index.vectors.shards import ShardedIndex, check_shards
    from index.vectors.vector_index import VectorIndex, tune_faiss_blas

    shards = check_shards(shards)

    tune_faiss_blas()  # process-wide faiss setting: the building process owns it
    record = model_record(catalog, model_id)
    ids, vectors = load_embeddings(catalog, model_id)
    if len(ids) == 0:
        raise EmptyIndex(f"model {model_id} has no vectors yet", hint="run `oceanid embed` first")
    content = content_digest(ids, vectors)
    repaired = None
    if not rebuild:
        from app.workspace.agreement import disagreement

        name, manifest = live_manifest(home, model_id)
        same_kind = kind == "auto" or (manifest is not None and manifest.kind == kind)  # --kind asks for a change
        same_shards = manifest is not None and max(manifest.shards, 1) == shards
        repaired = disagreement(name, manifest, ids, content) if manifest is not None else None
        if (
            repaired is None
            and manifest is not None
            and manifest.config_hash == record.config_hash
            and same_kind
            and same_shards
        ):
            return BuildResult(name, False, manifest)
    if shards > 1:
        index = ShardedIndex.build(ids, vectors, shards, kind=kind, device=device)
    else:
        index = VectorIndex.build(ids, vectors, kind=kind, device=device)
    generation, manifest, pruned = publish_generation(home, model_id, index, record.config_hash, content)
    return BuildResult(generation, True, manifest, pruned=tuple(pruned), disagreed=repaired)
