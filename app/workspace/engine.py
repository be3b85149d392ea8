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
from index.ood import SCORERS, Scorer, calibrate, is_unknown, make_scorer
from index.prototypes import Prototypes
from index.records import SUPPORT, TRAIN, VAL

if TYPE_CHECKING:
    from PIL import Image

    from embedder.model import EmbeddingModel
    from index.vectors import VectorIndex

log = logging.getLogger(__name__)

#: The scorer that turns a low score into "unknown"; chosen in bench/ood_scorers.py.
DEFAULT_SCORER = "knn"
TPR = 0.95
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
                names: Sequence[str] = tuple(SCORERS)) -> tuple[dict[str, Scorer], dict[str, float]]:
    """Fit each OOD scorer on ``train`` (vectors (n, d), labels (n,)) and calibrate its
    threshold on ``val`` crops of species that have prototypes (95% accepted)."""
    vectors, labels = train
    if len(vectors) == 0:
        raise EmptyIndex("no training vectors to fit the OOD scorers on")
    scorers, thresholds = {}, {}
    known = np.isin(val[1], list(prototypes.names))
    calib = val[0][known] if known.any() else vectors
    for name in names:
        scorer = make_scorer(name).fit(vectors, labels, prototypes)
        scorers[name] = scorer
        thresholds[name] = calibrate(scorer.score(calib), TPR)
    return scorers, thresholds


def load_engine(catalog: Catalog, home: Home, model_id: str, device: str = "cpu",
                scorer: str = DEFAULT_SCORER) -> Engine:
    """Load everything a query needs. Raises NotFound / EmptyIndex / IndexMismatch."""
    from embedder.model import config_hash, load_model
    from index.generations import current_generation, load_current

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
    scorers, thresholds = fit_scorers(prototypes, (train_v, train_l), (val_v, val_l))
    generation = current_generation(home.root, model_id) or "?"
    log.info("engine %s/%s: %d vectors, %d species", model_id, generation, manifest.count, len(prototypes.names))
    return Engine(model_id, load_model(folder), index, generation, prototypes, origins, scorers, thresholds,
                  scorer, device)
