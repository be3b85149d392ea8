"""The loaded query engine of one model: encoder, prototypes, OOD scorers, and (on first search) the index.

``load_engine`` composes ``embedder`` (the encoder) and ``index`` (vectors,
prototypes, scorers) for queries. It checks that the model folder, the catalog's
record of the model and the live generation's manifest agree (searching with the
wrong encoder is the worst silent bug this system could have).

Loading is a read: the decision scorer, every threshold and the calibration
temperature were decided when the trained prototypes were built and are read back
(:mod:`index.catalog.decisions`, :mod:`app.workspace.decisions`). Adding a species never
changes them. A crop whose nearest prototype is a trained species is judged exactly
as before any species was added; one whose nearest prototype is an added species is
named it when the decision scorer, fitted with the added species' support crops
(``index.scoring.ood.KnnScorer(few_shot=...)``), accepts it at the stored threshold, and is
otherwise judged as before. So a known crop's answer can change only to an added
species, and removing that species restores every answer.

The FAISS generation is opened (and sha256-checked) on the first search only:
identify never reads it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.workspace.decisions import (
    fit_calibration,  # noqa: F401
    trained_only,
)
from app.workspace.stored_scorers import added_scorer, known_scorers
from index.catalog.catalog import Catalog
from index.catalog.decisions import Decision, load_decision, prototypes_digest
from index.catalog.embeddings import ADDED, load_prototypes, model_record
from index.errors import EmptyIndex, IndexMismatch, NotFound
from index.home import Home
from index.records import TRAIN
from index.scoring.calibration import Calibration
from index.scoring.ood import DEFAULT_SCORER, Scorer, is_unknown, make_scorer
from index.scoring.ood_choice import ScorerChoice
from index.scoring.prototypes import Prototypes

if TYPE_CHECKING:
    from PIL import Image

    from app.workspace.encoders import QueryEncoder
    from index.taxonomy import Lineage, RankTable
    from index.vectors.generations import Manifest
    from index.vectors.vector_index import VectorIndex

log = logging.getLogger(__name__)

FIT_SPLITS = (TRAIN,)  # what the known species' OOD scorers are fitted on (added species: + SUPPORT)


@dataclass(frozen=True)
class Verdicts:
    """The engine's judgement of n crops (arrays in crop order)."""

    species: np.ndarray  # (n,) object: the species named, or "unknown"
    scores: dict[str, np.ndarray]  # scorer -> (n,) score (the deciding scorer's: the score it decided on)
    unknown: dict[str, np.ndarray]  # scorer -> (n,) bool, score below its stored threshold


class _Lazy:
    """A value made on first use by ``load`` (thread-safe): the engine's encoder and its FAISS
    generation, which identify and search-by-crop-id respectively never need."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self._value: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._load()
        return self._value

    @property
    def loaded(self) -> bool:
        return self._value is not None


@dataclass
class Engine:
    """Everything a query needs, loaded once per (model, live generation, prototypes version)."""

    model_id: str
    lazy_model: _Lazy  # -> QueryEncoder (app.workspace.encoders: onnxruntime, else torch)
    lazy_index: _Lazy  # -> VectorIndex (the live generation, opened and sha256-checked)
    generation: str
    prototypes: Prototypes
    origins: dict[str, str]  # species -> "train" | "added"
    scorers: dict[str, Scorer] = field(default_factory=dict)  # name -> scorer fitted on the known species
    thresholds: dict[str, float] = field(default_factory=dict)  # stored with the decision
    scorer: str = DEFAULT_SCORER  # the one that decides "unknown"
    device: str = "cpu"
    gpu_search: bool = False  # put a FAISS GPU copy of the index up on first search
    calibration: Calibration | None = None  # temperature of prototype cosines, fitted on val
    choice: ScorerChoice | None = None  # how ``scorer`` was chosen (held-out validation or default)
    added_scorer: Scorer | None = None  # the decision scorer fitted with the added species' support crops
    manifest: Manifest | None = None  # the live generation's manifest (read without the index file)
    decision: Decision | None = None
    _gpu_index: VectorIndex | None = None
    _rank_tables: dict[tuple, RankTable] = field(default_factory=dict)  # class lineages -> table

    @property
    def model(self) -> QueryEncoder:
        """The encoder (loaded on first use: a search by crop id reads the stored vector instead)."""
        return self.lazy_model.get()

    @property
    def index(self) -> VectorIndex:
        """The live generation's CPU index (opened and sha256-checked on first use)."""
        return self.lazy_index.get()

    @property
    def gpu_index(self) -> VectorIndex | None:
        """A FAISS GPU copy for unfiltered search (faiss-gpu + CUDA), made on first use; else None."""
        if self.gpu_search and self._gpu_index is None:
            self._gpu_index = self.index.on_device("cuda")
        return self._gpu_index

    def rank_table(self, tree: Mapping[str, Lineage]) -> RankTable:
        """The prototypes' :class:`index.taxonomy.RankTable` over ``tree`` (the catalog's lineages,
        read per call so a `taxa import` elsewhere shows), built once per distinct set of lineages."""
        from index.taxonomy import lineage_of, rank_table

        key = tuple(lineage_of(name, tree) for name in self.prototypes.names)
        table = self._rank_tables.get(key)
        if table is None:
            table = self._rank_tables[key] = rank_table(self.prototypes.names, tree)
        return table

    @property
    def rank_threshold(self) -> float:
        """The probability a taxon needs to be named: the stored decision's, chosen on validation
        (the provisional default for an engine without a decision)."""
        from index.taxonomy import RANK_THRESHOLD

        return self.decision.rank_threshold if self.decision is not None else RANK_THRESHOLD

    @property
    def unknown_ranks(self):
        """How often a rank named for an unknown crop was right on held-out species (the stored
        decision's, ``index.metrics.unknown_ranks``; None: nothing measured, no rank is named)."""
        return self.decision.unknown_ranks if self.decision is not None else None

    @property
    def priors(self):
        """The stored decision's class priors (``index.scoring.priors.ClassPriors``; None: equal)."""
        return self.decision.priors if self.decision is not None else None

    def logits(self, similarities: np.ndarray) -> np.ndarray:
        """(n, C) prototype cosines -> the calibrated, prior-adjusted logits ``cosine / T + tau log pi``
        (``index.scoring.priors.adjusted_logits``): their row argmax is the engine's species answer."""
        from index.scoring.priors import adjusted_logits

        temperature = self.calibration.temperature if self.calibration is not None else None
        return adjusted_logits(similarities, self.prototypes.names, temperature, self.priors)

    def probabilities(self, similarities: np.ndarray) -> np.ndarray:
        """(n, C) prototype cosines (``prototypes.similarities``) -> calibrated species
        probabilities (softmax of cosine / temperature; temperature 1 when no validation
        crops were there to fit it), adjusted by the stored class priors."""
        from index.scoring.calibration import calibrated_probabilities

        if self.calibration is not None:
            probs = self.calibration.probabilities(similarities)
        else:
            probs = calibrated_probabilities(similarities, 1.0)
        return self.priors.adjust(probs, self.prototypes.names) if self.priors is not None else probs

    def embed_files(self, paths: Sequence[Path | str], batch_size: int = 64) -> tuple[list[int], np.ndarray]:
        """Crop files -> (positions of the files that decoded, their (n_ok, d) float32 unit vectors);
        an unreadable file is left out (``index.imaging.open_image`` raises BadImage for it)."""
        from index.errors import BadImage
        from index.imaging import open_image

        ok: list[int] = []
        out = [np.zeros((0, self.prototypes.dim), np.float32)]
        for start in range(0, len(paths), batch_size):
            images = []
            for n in range(start, min(start + batch_size, len(paths))):
                try:
                    images.append(open_image(paths[n]))
                    ok.append(n)
                except BadImage:
                    continue
            if images:
                out.append(self.embed(images))
        return ok, np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """PIL images -> (n, d) float32 L2-normalised vectors."""
        return self.model.embed(list(images))

    def ood(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """Every known-species scorer's (n,) scores for (n, d) vectors (higher = more known)."""
        return {name: scorer.score(vectors) for name, scorer in self.scorers.items()}

    def unknown(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per scorer, (n,) bool: below its stored threshold (``index.scoring.ood.is_unknown``)."""
        return {
            name: np.asarray(is_unknown(s, self.thresholds[name]), dtype=bool).reshape(-1) for name, s in scores.items()
        }

    def verdicts(self, vectors: np.ndarray, similarities: np.ndarray | None = None) -> Verdicts:
        """Judge (n, d) vectors (``similarities``: their (n, C) prototype cosines, if computed).

        A crop nearest a trained species' prototype gets the known-species answer (the stored
        decision scorer and threshold over the trained prototypes); one nearest an added
        species is named it when :attr:`added_scorer` accepts it at the same threshold, else
        it gets the known-species answer too."""
        sims = self.prototypes.similarities(vectors) if similarities is None else similarities
        names = np.asarray(self.prototypes.names, dtype=object)
        trained = np.asarray([self.origins.get(n) != ADDED for n in self.prototypes.names])
        logits = self.logits(sims)  # the cosines' order unless class priors are stored
        nearest_trained = (
            names[trained][logits[:, trained].argmax(axis=1)]
            if trained.any()
            else np.full(len(sims), "unknown", dtype=object)
        )
        scores = self.ood(vectors)
        unknown = self.unknown(scores)
        decide = self.scorer
        species = np.where(unknown[decide], "unknown", nearest_trained).astype(object)
        top = logits.argmax(axis=1)
        to_added = np.flatnonzero(~trained[top])
        if to_added.size and self.added_scorer is not None:
            score = self.added_scorer.score(np.ascontiguousarray(vectors[to_added]))
            accept = score >= self.thresholds[decide]
            rows = to_added[accept]
            species[rows] = names[top[rows]]
            scores[decide] = scores[decide].copy()
            scores[decide][rows] = score[accept]
            unknown[decide][rows] = False
        return Verdicts(species, scores, unknown)


def decision_for(catalog: Catalog, model_id: str, trained: Prototypes) -> Decision:
    """The stored decision for these trained prototypes (``index build`` stores it; loading only
    reads). Raises EmptyIndex when none is stored for them."""
    decision = load_decision(catalog, model_id)
    if decision is None or decision.prototypes_digest != prototypes_digest(trained):
        raise EmptyIndex(
            f"model {model_id} has no stored decision for its prototypes",
            hint="run `oceanid index build` (it decides once; loading only reads)",
        )
    return decision


def query_devices(device: str) -> tuple[str, bool]:
    """``auto | cpu | cuda`` -> (encoder device, whether to put a FAISS GPU copy of the index up).

    The encoder runs on CUDA when asked (an error without it, never a silent fallback) or when
    ``auto`` finds one; the GPU index copy needs faiss-gpu as well (``auto`` skips it without,
    ``cuda`` requires only the encoder's CUDA and logs that search stays on the CPU).
    Filtered search always runs on the CPU index (FAISS GPU indexes take no id selector).
    """
    from app.workspace.encoders import encoder_device
    from index.vectors.vector_index import gpu_available

    encoder = encoder_device(device)[1]
    gpu_faiss = encoder.startswith("cuda") and gpu_available()
    if encoder.startswith("cuda") and not gpu_faiss:
        log.info("encoder on %s; faiss has no GPU support here, so search stays on the CPU index", encoder)
    return encoder, gpu_faiss


def load_engine(
    catalog: Catalog, home: Home, model_id: str, device: str = "cpu", scorer: str | None = None, gpu_search: bool = True
) -> Engine:
    """Load everything a query needs. Raises NotFound / EmptyIndex / IndexMismatch.

    ``device`` (auto | cpu | cuda) places the encoder and, with faiss-gpu, a GPU copy of the
    index for unfiltered search (:func:`query_devices`).

    The decision scorer is the stored decision's (:func:`decision_for`); ``scorer`` overrides it
    for this engine only (its stored threshold applies).
    """
    from index.vectors.vector_index import tune_faiss_blas

    tune_faiss_blas()  # process-wide faiss setting: the query process owns it
    with catalog.read():  # one open of the catalog file for every read below (Catalog.read nests)
        return _load_engine(catalog, home, model_id, device, scorer, gpu_search)


def _load_engine(
    catalog: Catalog, home: Home, model_id: str, device: str, scorer: str | None, gpu_search: bool
) -> Engine:
    from embedder.config import config_hash
    from index.vectors.generations import current_manifest

    record = model_record(catalog, model_id)
    folder = home.model(model_id)
    if not (folder / "config.json").is_file():
        raise NotFound(f"model folder {folder} is missing", hint="train it again with `oceanid train`")
    if config_hash(folder) != record.config_hash:
        raise IndexMismatch(
            f"model {model_id} on disk differs from the one its vectors were made with",
            hint="run `oceanid embed` and `oceanid index rebuild`",
        )
    generation, manifest = current_manifest(home.root, model_id, record.config_hash, dim=record.dim)
    prototypes, origins = load_prototypes(catalog, model_id)
    trained = trained_only(prototypes, origins)
    decision = decision_for(catalog, model_id, trained)
    scorers = known_scorers(catalog, home, model_id, trained, decision)
    chosen = scorer or decision.scorer
    if chosen not in decision.thresholds:
        make_scorer(chosen)  # raises InvalidInput listing the valid names
    added = sorted(name for name, origin in origins.items() if origin == ADDED)
    with_added = (
        added_scorer(
            catalog,
            home,
            model_id,
            prototypes,
            origins,
            chosen,
            catalog.prototypes_version(model_id),
            decided=decision.scorer,
        )
        if added
        else None
    )
    log.info(
        "engine %s/%s: %d vectors, %d species (%d added), decision scorer %s",
        model_id,
        generation,
        manifest.count,
        len(prototypes.names),
        len(added),
        chosen,
    )
    encoder_device, gpu_faiss = query_devices(device)
    from app.workspace.encoders import query_encoder
    from index.vectors.generations import load_generation

    lazy = _Lazy(lambda: load_generation(home.root, model_id, generation, record.config_hash, record.dim, device="cpu"))
    encoder = _Lazy(lambda: query_encoder(folder, encoder_device))
    return Engine(
        model_id,
        encoder,
        lazy,
        generation,
        prototypes,
        origins,
        scorers,
        dict(decision.thresholds),
        chosen,
        encoder_device,
        gpu_faiss and gpu_search,
        decision.calibration,
        decision.choice,
        with_added,
        manifest,
        decision,
    )


@dataclass(frozen=True)
class Judgement:
    """What the engine makes of n embedded crops (rows in crop order), for identify's answers."""

    similarities: np.ndarray  # (n, C) cosine to each prototype
    tops: list  # per crop, the k best (species, cosine)
    probabilities: np.ndarray  # (n, C) calibrated species probabilities
    top_probabilities: list  # per crop, the k best (species, probability)
    verdicts: Verdicts


def judge(engine: Engine, vectors: np.ndarray, k: int) -> Judgement:
    """(n, d) float32 L2-normalised vectors -> similarities, top-k, calibrated probabilities and
    the engine's verdicts, each computed once."""
    sims = engine.prototypes.similarities(vectors)
    calibrated = engine.probabilities(sims)
    return Judgement(
        sims,
        engine.prototypes.ranked(sims, k),
        calibrated,
        engine.prototypes.ranked(calibrated, k),
        engine.verdicts(vectors, sims),
    )
