"""The general vector space beside each model's tuned one, and answers decided with both (issue 26).

A model ``M`` (the tuned space) gets a second space ``M.general``: a frozen ImageNet encoder
(:mod:`embedder.general`) written once as a model folder of its own, so its vectors, prototypes,
decision and index generations live under their own space id and a retrain or a new model never mixes
them. ``embed`` fills it, ``index build`` builds it, ``species add`` / ``remove`` keep it; a home without
it answers with the tuned space alone, as before.

How the two decide together is stored at ``index build`` (:class:`index.scoring.fusion.SpacesDecision`,
read at load): the naming space (tuned, general, or the fusion of both centred spaces), the unknown rule
(the tuned space's decision, or two stages), and the fusion's weight and means. Chosen by measurement:
bench/two_spaces.py (bench/RESULTS.md, "Two vector spaces"). Search in a space: :mod:`app.workspace.space_search`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from index.catalog.decisions import prototypes_digest
from index.catalog.embeddings import ADDED, load_embeddings, load_prototypes, model_record
from index.catalog.spaces import load_spaces_decision, store_spaces_decision
from index.errors import IndexMismatch, InvalidInput, NotFound
from index.records import TRAIN, VAL
from index.scoring.fusion import Fusion, SpacesDecision, centred
from index.scoring.prototypes import Prototypes

if TYPE_CHECKING:
    from collections.abc import Sequence

    from PIL import Image

    from app.workspace.engine import Engine, Verdicts
    from embedder.general import GeneralConfig
    from index.catalog.catalog import Catalog
    from index.home import Home

log = logging.getLogger(__name__)

GENERAL_SUFFIX = ".general"
#: the stored rule (bench/two_spaces.py, bench/RESULTS.md "Two vector spaces: every rule measured"): name in
#: the fusion of the centred tuned and general spaces, the tuned space's cosine weighted FUSION_WEIGHT;
#: "unknown" decided by UNKNOWN_RULE: "two-stage" (the tuned space's trained-species decision, then, for a crop
#: named an added species, that species' few-shot scorer in the general space) named 0.659 of the added
#: species' crops against "tuned"'s 0.540 at the same known top-1 (0.957) and AUROC (0.910 vs 0.912), better on
#: all four fish folds (5 shots; the tuned space alone: 0.356)
NAMING = "fused"
UNKNOWN_RULE = "two-stage"
FUSION_WEIGHT = 0.3
#: whether every step that embeds for a user (``oceanid embed``, also ``--engine ray``, ``oceanid demo``,
#: ``identify --save``) starts the general space for a model that has none: on (issue 26; the rule above
#: named 0.82 of an added species' crops against 0.38 with the tuned space alone). ``embed
#: --no-general-space`` / ``Workspace.embed(general=False)`` start none; the environment variable
#: GENERAL_SPACE_ENV = 0 sets the default off (the test suite's tiny homes: tests/conftest.py)
GENERAL_SPACE = True
GENERAL_SPACE_ENV = "OCEANID_GENERAL_SPACE"


def general_id(model_id: str) -> str:
    """The general space's id of a model (its catalog model record, its index generations)."""
    return model_id + GENERAL_SUFFIX


def is_general_id(model_id: str) -> bool:
    return model_id.endswith(GENERAL_SUFFIX)


def has_general(catalog: Catalog, model_id: str) -> bool:
    """Whether the model's general space has vectors in the catalog (was embedded)."""
    try:
        model_record(catalog, general_id(model_id))
    except NotFound:
        return False
    return True


def general_space(asked: bool | None = None) -> bool:
    """Whether ``embed`` starts the general space for a model that has none: ``asked`` when given, else
    :data:`GENERAL_SPACE`, unless ``$OCEANID_GENERAL_SPACE`` says 1 / 0 (on / off, true / false, yes / no);
    another value there raises InvalidInput."""
    if asked is not None:
        return asked
    value = os.environ.get(GENERAL_SPACE_ENV, "").strip().lower()
    if not value:
        return GENERAL_SPACE
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    raise InvalidInput(f"{GENERAL_SPACE_ENV}={value!r} is neither 1 nor 0", hint="unset it for the default (on)")


def ensure_general_model(catalog: Catalog, home: Home, model_id: str, config: GeneralConfig | None = None) -> str:
    """Write the general encoder's model folder beside the tuned model's, once, with its ONNX export
    (checked on the first validation crops, as ``train`` exports the tuned one, so queries need no
    torch); returns its id."""
    from app.workspace.pipeline import export_encoder
    from embedder.general import GeneralConfig, write_general_model
    from index.catalog.embeddings import labelled_crops

    gid = general_id(model_id)
    folder = home.model(gid)
    if not (folder / "config.json").is_file():
        write_general_model(folder, config or GeneralConfig())
        export_encoder(folder, [home.resolve(p) for p, _ in labelled_crops(catalog, VAL)])
        log.info("general space %s written (%s)", gid, (config or GeneralConfig()).to_dict())
    return gid


def wants_general(home: Home, model_id: str) -> bool:
    """Whether ``embed`` keeps a general space for the model: only when its general encoder's folder
    exists (``oceanid embed`` writes it unless told not to, :func:`general_space`; or a user put one
    there)."""
    if is_general_id(model_id):
        return False
    return (home.model(general_id(model_id)) / "config.json").is_file()


def _aligned_train(catalog: Catalog, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """The training vectors of both spaces, row i the same crop in both."""
    ti, tv = load_embeddings(catalog, model_id, (TRAIN,))
    gi, gv = load_embeddings(catalog, general_id(model_id), (TRAIN,))
    common = np.intersect1d(ti, gi)
    return tv[np.searchsorted(ti, common)], gv[np.searchsorted(gi, common)]


def _trained(catalog: Catalog, space: str) -> Prototypes:
    from app.workspace.decisions import trained_only

    return trained_only(*load_prototypes(catalog, space))


def decide_spaces(
    catalog: Catalog,
    model_id: str,
    naming: str = NAMING,
    unknown: str = UNKNOWN_RULE,
    weight: float = FUSION_WEIGHT,
    force: bool = False,
) -> bool:
    """Store the two-space decision for the model's current trained prototypes in both spaces, unless one
    is stored for exactly them and this rule. Returns whether one was written."""
    gid = general_id(model_id)
    key = "\0".join(
        [
            prototypes_digest(_trained(catalog, model_id)),
            prototypes_digest(_trained(catalog, gid)),
            naming,
            unknown,
            repr(float(weight)),
        ]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()
    stored = load_spaces_decision(catalog, model_id)
    if not force and stored is not None and stored.digest == digest:
        return False
    fusion = Fusion.fit(*_aligned_train(catalog, model_id), weight)
    store_spaces_decision(catalog, SpacesDecision(model_id, gid, naming, unknown, fusion, digest))
    log.info("two-space decision for %s: naming %s, unknown %s, weight %.2f", model_id, naming, unknown, weight)
    return True


@dataclass(frozen=True)
class SpaceVerdicts:
    """The two spaces' judgement of n crops (arrays in crop order)."""

    species: np.ndarray  # (n,) object: the species named, or "unknown"
    similarities: np.ndarray  # (n, C) the naming space's class similarities, in the tuned prototypes' order
    named_by: np.ndarray  # (n,) object: the space that named the crop ("" when unknown)
    unknown_by: np.ndarray  # (n,) object: the space(s) that decided "unknown" ("" when named)
    verdicts: Verdicts  # species as above; the tuned space's scores, its deciding scorer's unknown = the answer's


@dataclass
class TwoSpaces:
    """Both engines of a model and their stored decision: what identify needs to answer with both."""

    tuned: Engine
    general: Engine
    decision: SpacesDecision

    def __post_init__(self) -> None:
        missing = set(self.tuned.prototypes.names) ^ set(self.general.prototypes.names)
        if missing:
            raise IndexMismatch(
                f"the tuned and general spaces of {self.tuned.model_id} differ in species: "
                f"{', '.join(sorted(missing))}",
                hint="run `oceanid index build`",
            )
        fusion = self.decision.fusion
        self._order = np.array([self.general.prototypes.names.index(n) for n in self.tuned.prototypes.names])
        self._centred = (
            _centred_prototypes(self.tuned.prototypes, fusion.tuned_mean),
            _centred_prototypes(self.general.prototypes, fusion.general_mean),
        )

    def embed(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """PIL images -> ((n, d_t), (n, d_g)) unit vectors: one decode, both encoders batched."""
        images = list(images)
        return self.tuned.embed(images), self.general.embed(images)

    def similarities(self, tuned: np.ndarray, general: np.ndarray, space: str | None = None) -> np.ndarray:
        """(n, C) class similarities in ``space`` (default: the naming space), tuned prototypes' order.

        fused: ``w cos_t + (1-w) cos_g`` of the centred vectors and centred prototypes (per class the best
        row in each space), which is the cosine of the fused vectors for one prototype per class.
        """
        space = space or self.decision.naming
        if space == "tuned":
            return self.tuned.prototypes.similarities(tuned)
        if space == "general":
            return self.general.prototypes.similarities(general)[:, self._order]
        fusion = self.decision.fusion
        st = self._centred[0].similarities(centred(tuned, fusion.tuned_mean))
        sg = self._centred[1].similarities(centred(general, fusion.general_mean))[:, self._order]
        return fusion.weight * st + (1.0 - fusion.weight) * sg

    def verdicts(self, tuned: np.ndarray, general: np.ndarray) -> SpaceVerdicts:
        """Judge n crops from their vectors in both spaces, ``(n, d_t)`` and ``(n, d_g)``.

        Named in the naming space; accepted when the tuned space's trained-species decision accepts, or,
        for a crop named an added species, when that species' few-shot scorer accepts it (in the tuned space
        under rule "tuned", the general one under "two-stage"). So a known crop's answer can change only
        to an added species, and removing it restores every answer."""
        from app.workspace.engine import Verdicts

        decision = self.decision
        sims = self.similarities(tuned, general)
        names = np.asarray(self.tuned.prototypes.names, dtype=object)
        top = names[sims.argmax(axis=1)] if len(names) else np.full(len(tuned), "unknown", dtype=object)
        # stage one: the tuned space's trained-species decision, exactly as before any species was added
        scores = self.tuned.ood(tuned)
        unknown = self.tuned.unknown(scores)
        known = ~unknown[self.tuned.scorer]
        # stage two, only for a crop the naming space names an added species: that species' few-shot
        # scorer accepts it, in the tuned space (rule "tuned") or the general space ("two-stage")
        added = np.isin(top, [s for s, o in self.tuned.origins.items() if o == ADDED])
        engine, vectors = (self.tuned, tuned) if decision.unknown == "tuned" else (self.general, general)
        second = np.zeros(len(tuned), bool)
        rows = np.flatnonzero(~known & added)
        if rows.size and engine.added_scorer is not None:
            score = engine.added_scorer.score(np.ascontiguousarray(vectors[rows]))
            second[rows] = score >= engine.thresholds[engine.scorer]
        accept = known | second
        by = "tuned" if decision.unknown == "tuned" else "tuned+general"
        unknown_by = np.where(accept, "", np.where(added, by, "tuned")).astype(object)
        species = np.where(accept, top, "unknown").astype(object)
        named_by = np.where(accept, decision.naming, "").astype(object)
        unknown[self.tuned.scorer] = ~accept
        return SpaceVerdicts(species, sims, named_by, unknown_by, Verdicts(species, scores, unknown))


def _centred_prototypes(prototypes: Prototypes, mean: np.ndarray) -> Prototypes:
    return Prototypes(prototypes.names, centred(prototypes.vectors, mean), prototypes.owners)


# -- the steps that keep the general space (called by the Workspace beside the tuned space's) -----------


def embed_general(
    catalog: Catalog, home: Home, model_id: str, batch_size: int = 64, device: str = "auto", progress: bool = False
):
    """Embed every crop that has no vector in the model's general space (written first if missing);
    None for a model that keeps no general space (:func:`wants_general`)."""
    from app.workspace.pipeline import embed_crops

    if not wants_general(home, model_id):
        return None
    return embed_crops(catalog, home, ensure_general_model(catalog, home, model_id), batch_size, device, progress)


def embed_general_crops(catalog: Catalog, home: Home, model_id: str, ids: Sequence[int]) -> int:
    """Store the general-space vectors of the crops ``ids`` (new truth crops whose tuned vectors a step
    just stored: a Label Studio annotation), with the general encoder's query runtime, when the model
    keeps a general space; returns how many were stored (0 for a model with one space)."""
    from app.workspace.encoders import embed_paths, query_encoder
    from index.catalog.embeddings import store_embeddings
    from index.catalog.lookup import crop_files

    if is_general_id(model_id) or not has_general(catalog, model_id) or not len(ids):
        return 0
    gid = general_id(model_id)
    ids = np.asarray(ids, dtype=np.int64)
    vectors, ok, _ = embed_paths(query_encoder(home.model(gid), "cpu"), crop_files(catalog, home.root, ids))
    return store_embeddings(catalog, gid, ids[np.asarray(ok, dtype=np.int64)], vectors)


def build_general(
    catalog: Catalog,
    home: Home,
    model_id: str,
    kind: str = "auto",
    device: str = "cpu",
    rebuild: bool = True,
    n_centres: int = 1,
    shards: int = 1,
):
    """The general space's prototypes, decision and index generation, then the two-space decision.

    Returns the general space's BuildResult, or None when the model has no general space."""
    from dataclasses import replace

    from app.workspace.pipeline import build_index, fit_prototypes

    if not has_general(catalog, model_id):
        return None
    gid = general_id(model_id)
    _, refit = fit_prototypes(catalog, gid, n_centres, home=home)
    result = build_index(catalog, home, gid, kind, device, rebuild=rebuild, shards=shards)
    decided = decide_spaces(catalog, model_id)
    return replace(result, prototypes_refit=refit or decided)


def load_spaces(catalog: Catalog, home: Home, tuned: Engine, device: str = "cpu") -> TwoSpaces | None:
    """Both spaces of ``tuned``'s model with their stored decision, or None (one space only, or a
    decision made for other prototypes than the stored ones: `oceanid index build` decides again)."""
    from app.workspace.engine import load_engine

    if is_general_id(tuned.model_id) or not has_general(catalog, tuned.model_id):
        return None
    decision = load_spaces_decision(catalog, tuned.model_id)
    if decision is None:
        log.warning("model %s has a general space but no two-space decision: run `oceanid index build`", tuned.model_id)
        return None
    general = load_engine(catalog, home, decision.general_id, device=device, gpu_search=False)
    return TwoSpaces(tuned, general, decision)


def add_general(
    catalog: Catalog, home: Home, general: Engine, name: str, crops: Sequence[Image.Image] | None = None
) -> str:
    """Add species ``name`` (its support crops already stored by the tuned space's add) to the general
    space: its vectors, prototype and a new generation. ``crops``: those support crops in memory, in the
    order they are stored (embedded as they are; None: read from their files). Returns the generation."""
    from app.workspace.pipeline import catalog_content, live_manifest, publish_generation
    from index.catalog.embeddings import add_support_class, support_crops

    gid = general.model_id
    rows = support_crops(catalog, name)
    _, live = live_manifest(home, gid)
    in_sync = live is not None and live.content == catalog_content(catalog, gid)
    if crops is not None and len(crops) == len(rows):
        from app.workspace.encoders import embed_in_batches

        ok, vectors = list(range(len(crops))), embed_in_batches(general.embed, crops)
    else:
        ok, vectors = general.embed_files([home.resolve(p) for _, p in rows])
    ids = np.asarray([rows[i][0] for i in ok], dtype=np.int64)
    add_support_class(catalog, gid, name, ids, vectors, general.prototypes.with_class(name, vectors))
    index = general.index.copy()
    index.add(ids, vectors)
    content = catalog_content(catalog, gid) if in_sync else ""
    generation, _, _ = publish_generation(home, gid, index, model_record(catalog, gid).config_hash, content)
    _store_added_scorer(catalog, home, gid)
    return generation


def remove_general(catalog: Catalog, home: Home, general: Engine, name: str, doomed: np.ndarray) -> str:
    """Take species ``name`` out of the general space: ``doomed`` (its support crop ids) out of a new
    generation, its prototype out of the catalog. Returns the generation."""
    from app.workspace.pipeline import publish_generation
    from index.catalog.spaces import drop_added_class

    gid = general.model_id
    index = general.index.copy()
    index.remove(np.asarray(doomed, dtype=np.int64))
    generation, _, _ = publish_generation(home, gid, index, model_record(catalog, gid).config_hash)
    drop_added_class(catalog, gid, name)
    _store_added_scorer(catalog, home, gid)
    return generation


def _store_added_scorer(catalog: Catalog, home: Home, gid: str) -> None:
    """The general space's added-species scorer, stored as species add / remove store the tuned one's."""
    from app.workspace.stored_scorers import store_added_scorer
    from index.errors import OceanidError

    try:
        store_added_scorer(catalog, home, gid)
    except OceanidError as exc:
        log.warning(
            "the general space's scorer of the added species is not stored now (%s): run `oceanid index build`", exc
        )


def verify_general(catalog: Catalog, home: Home, model_id: str) -> None:
    """Check the general space's live generation against its manifest and encoder, as ``index verify`` does
    the tuned one's (nothing to check for a model with one space). Raises what ``verify`` raises."""
    from app.workspace.indexes import verify_generation

    if is_general_id(model_id) or not has_general(catalog, model_id):
        return
    verify_generation(catalog, home, general_id(model_id))
