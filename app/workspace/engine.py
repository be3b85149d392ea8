"""The loaded query engine of one model: encoder, live index, prototypes, OOD scorers.

``load_engine`` composes ``embedder`` (the encoder) and ``index`` (vectors,
prototypes, scorers) for queries. It checks that the model folder, the catalog's
record of the model and the index manifest agree (searching with the wrong
encoder is the worst silent bug this system could have). OOD thresholds are
calibrated at load, at 95% true-positive rate on the known validation crops,
so they always match the current prototypes (a species added since is covered).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from index.catalog import Catalog
from index.embeddings import load_embeddings, load_prototypes, model_record
from index.errors import EmptyIndex, IndexMismatch, NotFound
from index.home import Home
from index.calibration import Calibration, fit_temperature
from index.ood import DEFAULT_SCORER, SCORERS, TPR_TARGET, Scorer, calibrate, is_unknown, make_scorer
from index.ood_choice import ScorerChoice, choose_scorer
from index.prototypes import Prototypes
from index.records import HOLDOUT, SUPPORT, TRAIN, VAL

if TYPE_CHECKING:
    from PIL import Image

    from embedder.model import EmbeddingModel
    from index.vectors import VectorIndex

log = logging.getLogger(__name__)

#: Known validation crops and held-out crops needed before the decision scorer is chosen on
#: them: below that a 95%-TPR threshold and an AUROC are too noisy to beat the measured default.
MIN_CHOICE_CROPS = 30
FIT_SPLITS = (TRAIN, SUPPORT)  # what prototypes and OOD scorers are fitted on


@dataclass
class Engine:
    """Everything a query needs, loaded once per (model, live generation, prototypes version)."""

    model_id: str
    model: EmbeddingModel
    index: VectorIndex
    generation: str
    prototypes: Prototypes
    origins: dict[str, str]  # species -> "train" | "added"
    scorers: dict[str, Scorer] = field(default_factory=dict)  # name -> fitted scorer
    thresholds: dict[str, float] = field(default_factory=dict)
    scorer: str = DEFAULT_SCORER  # the one that decides "unknown"
    device: str = "cpu"
    gpu_index: VectorIndex | None = None  # FAISS GPU copy for unfiltered search (faiss-gpu + CUDA)
    calibration: Calibration | None = None  # temperature of prototype cosines, fitted on val
    choice: ScorerChoice | None = None  # how ``scorer`` was chosen (held-out validation or default)

    def probabilities(self, similarities: np.ndarray) -> np.ndarray:
        """(n, C) prototype cosines (``prototypes.similarities``) -> calibrated species
        probabilities (softmax of cosine / temperature; temperature 1 when no validation
        crops were there to fit it)."""
        from index.calibration import calibrated_probabilities

        if self.calibration is not None:
            return self.calibration.probabilities(similarities)
        return calibrated_probabilities(similarities, 1.0)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """PIL images -> (n, d) float32 L2-normalised vectors."""
        from embedder.encoding import encode_images

        return encode_images(self.model, list(images), device=self.device)

    def ood(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """Every scorer's (n,) scores for (n, d) vectors (higher = more like the known species)."""
        return {name: scorer.score(vectors) for name, scorer in self.scorers.items()}

    def unknown(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per scorer, (n,) bool: below its calibrated threshold (``index.ood.is_unknown``)."""
        return {name: np.asarray(is_unknown(s, self.thresholds[name]), dtype=bool).reshape(-1)
                for name, s in scores.items()}


def fit_scorers(prototypes: Prototypes, train: tuple[np.ndarray, np.ndarray],
                val: tuple[np.ndarray, np.ndarray],
                names: Sequence[str] = tuple(SCORERS),
                few_shot: Sequence[str] = ()) -> tuple[dict[str, Scorer], dict[str, float]]:
    """Fit each OOD scorer on ``train`` (vectors (n, d), labels (n,)) and calibrate its
    threshold on ``val`` crops of species that have prototypes (95% accepted).

    ``few_shot``: species known only from a few support crops (added with ``species add``);
    the knn scorer puts their scores on the trained species' scale (``index.ood.KnnScorer``)."""
    vectors, labels = train
    if len(vectors) == 0:
        raise EmptyIndex("no training vectors to fit the OOD scorers on")
    scorers, thresholds = {}, {}
    known = np.isin(val[1], list(prototypes.names))
    calib = val[0][known] if known.any() else vectors
    for name in names:
        options = {"few_shot": tuple(few_shot), "tpr": TPR_TARGET} if name == "knn" else {}
        scorer = make_scorer(name, **options).fit(vectors, labels, prototypes)
        scorers[name] = scorer
        thresholds[name] = calibrate(scorer.score(calib), TPR_TARGET)
    return scorers, thresholds


def choice_rows(ids: np.ndarray) -> np.ndarray:
    """(n,) bool: the held-out crops the decision scorer is chosen on (even catalog ids);
    ``evaluate`` reports unknown detection on the others, so the choice is not graded on
    the crops it was made on."""
    return np.asarray(ids, dtype=np.int64) % 2 == 0


def fit_calibration(prototypes: Prototypes, val: tuple[np.ndarray, np.ndarray]) -> Calibration | None:
    """Temperature scaling of prototype cosines on validation crops of species with prototypes
    (None when there are fewer than 2 such species or no crops)."""
    names = list(prototypes.names)
    known = np.isin(val[1], names)
    if known.sum() == 0 or len(set(val[1][known].tolist())) < 2:
        return None
    index = {n: i for i, n in enumerate(names)}
    labels = np.asarray([index[n] for n in val[1][known]], dtype=np.int64)
    return fit_temperature(prototypes.similarities(val[0][known]), labels)


def query_devices(device: str) -> tuple[str, bool]:
    """``auto | cpu | cuda`` -> (encoder device, whether to put a FAISS GPU copy of the index up).

    The encoder runs on CUDA when asked (an error without it, never a silent fallback) or when
    ``auto`` finds one; the GPU index copy needs faiss-gpu as well (``auto`` skips it without,
    ``cuda`` requires only the encoder's CUDA and logs that search stays on the CPU).
    Filtered search always runs on the CPU index (FAISS GPU indexes take no id selector).
    """
    from embedder.device import resolve_device as torch_device
    from index.vectors import gpu_available

    encoder = str(torch_device(device))
    gpu_faiss = encoder.startswith("cuda") and gpu_available()
    if encoder.startswith("cuda") and not gpu_faiss:
        log.info("encoder on %s; faiss has no GPU support here, so search stays on the CPU index", encoder)
    return encoder, gpu_faiss


def load_engine(catalog: Catalog, home: Home, model_id: str, device: str = "cpu",
                scorer: str | None = None, gpu_search: bool = True) -> Engine:
    """Load everything a query needs. Raises NotFound / EmptyIndex / IndexMismatch.

    ``device`` (auto | cpu | cuda) places the encoder and, with faiss-gpu, a GPU copy of the
    index for unfiltered search (:func:`query_devices`).

    ``scorer=None`` chooses the decision scorer on the catalog's held-out species (their
    crops with even ids, :func:`choice_rows`) by validation AUROC, falling back to the
    measured default (``index.ood.DEFAULT_SCORER``) when there are none.
    """
    from embedder.model import config_hash, load_model
    from index.generations import current_generation, load_current
    from index.vectors import tune_faiss_blas

    tune_faiss_blas()  # process-wide faiss setting: the query process owns it
    record = model_record(catalog, model_id)
    folder = home.model(model_id)
    if not (folder / "config.json").is_file():
        raise NotFound(f"model folder {folder} is missing", hint="train it again with `oceanid train`")
    if config_hash(folder) != record["config_hash"]:
        raise IndexMismatch(
            f"model {model_id} on disk differs from the one its vectors were made with",
            hint="run `oceanid embed` and `oceanid index rebuild`")
    index, manifest = load_current(home.root, model_id, record["config_hash"], dim=record["dim"], device="cpu")
    prototypes, origins = load_prototypes(catalog, model_id)
    _, train_v, train_l = load_embeddings(catalog, model_id, FIT_SPLITS, with_labels=True)
    _, val_v, val_l = load_embeddings(catalog, model_id, (VAL,), with_labels=True)
    added = sorted(name for name, origin in origins.items() if origin == "added")
    scorers, thresholds = fit_scorers(prototypes, (train_v, train_l), (val_v, val_l), few_shot=added)
    choice = None
    if scorer is None:
        scorer = DEFAULT_SCORER
        known = np.isin(val_l, list(prototypes.names))
        if known.any():
            held_ids, held_v, held_l = load_embeddings(catalog, model_id, (HOLDOUT,), with_labels=True)
            unknown = choice_rows(held_ids) & ~np.isin(held_l, list(prototypes.names))
            if known.sum() < MIN_CHOICE_CROPS or unknown.sum() < MIN_CHOICE_CROPS:
                unknown[:] = False  # too few to choose on: the measured default, reported as such
            choice = choose_scorer(train_v, train_l, val_v[known], held_v[unknown], prototypes=prototypes,
                                   fitted=scorers)
            scorer = choice.scorer
    generation = current_generation(home.root, model_id) or "?"
    log.info("engine %s/%s: %d vectors, %d species, decision scorer %s", model_id, generation, manifest.count,
             len(prototypes.names), scorer)
    encoder_device, gpu_faiss = query_devices(device)
    gpu_index = index.on_device("cuda") if gpu_faiss and gpu_search else None
    return Engine(model_id, load_model(folder), index, generation, prototypes, origins, scorers, thresholds,
                  scorer, encoder_device, gpu_index, fit_calibration(prototypes, (val_v, val_l)), choice)
