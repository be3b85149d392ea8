"""The scorer protocol and the scorers over cosines: ``prototype``, ``msp`` and ``knn`` (see
:mod:`index.scoring.ood` for the registry, the threshold and what each scorer measures)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import faiss
import numpy as np

from index.errors import EmptyIndex, InvalidInput
from index.scoring.calibration import softmax
from index.scoring.prototypes import Prototypes
from index.vectors.checks import check_vectors
from index.vectors.faiss_calls import faiss_search

log = logging.getLogger(__name__)

Labels = Sequence[str] | np.ndarray


class Scorer(Protocol):
    """Fit on training vectors, then score queries (higher = more in-distribution)."""

    name: str

    def fit(self, train_vectors: np.ndarray, train_labels: Labels, prototypes: Prototypes | None = None) -> Scorer: ...

    def score(self, queries: np.ndarray) -> np.ndarray: ...

    def state(self) -> dict[str, np.ndarray]: ...


def check_train(vectors: np.ndarray, labels: Labels) -> np.ndarray:
    """``labels`` as a str array, one per row of ``vectors`` (checked: float32, L2-normalised). Raises InvalidInput."""
    check_vectors(vectors, name="train_vectors")
    labels = np.asarray([str(x) for x in labels])
    if vectors.shape[0] == 0 or labels.shape[0] != vectors.shape[0]:
        raise InvalidInput(f"need one label per training vector, got {labels.shape[0]} for {vectors.shape[0]}")
    return labels


class _PrototypeBased:
    name = "prototype-based"

    def __init__(self) -> None:
        self.prototypes: Prototypes | None = None

    def fit(self, train_vectors: np.ndarray, train_labels: Labels, prototypes: Prototypes | None = None) -> Any:
        """Use ``prototypes`` if given, else class means of the training vectors."""
        if prototypes is None:
            labels = check_train(train_vectors, train_labels)
            prototypes = Prototypes.fit(train_vectors, labels)
        self.prototypes = prototypes
        return self

    def state(self) -> dict[str, np.ndarray]:
        """What :func:`restore_scorer` needs besides the prototypes (nothing: they are the catalog's)."""
        return {}

    def restore(self, state: dict[str, np.ndarray], prototypes: Prototypes) -> Any:
        self.prototypes = prototypes
        return self

    def _sims(self, queries: np.ndarray) -> np.ndarray:
        if self.prototypes is None:
            raise EmptyIndex(f"OOD scorer {self.name!r} is not fitted")
        return self.prototypes.similarities(queries).astype(np.float64)


class PrototypeScorer(_PrototypeBased):
    """Max cosine similarity to any class prototype."""

    name = "prototype"

    def score(self, queries: np.ndarray) -> np.ndarray:
        """queries (m, d) float32 -> (m,) float64 in [-1, 1]."""
        return self._sims(queries).max(axis=1)


class MspScorer(_PrototypeBased):
    """Max softmax probability of ``temperature * per-class max cosine``."""

    name = "msp"

    def __init__(self, temperature: float = 20.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise InvalidInput("temperature must be > 0")
        self.temperature = float(temperature)  # cosine logits scale, like a normalised-softmax loss

    def score(self, queries: np.ndarray) -> np.ndarray:
        """queries (m, d) float32 -> (m,) float64 in [1/C, 1]."""
        return softmax(self.temperature * self._sims(queries), axis=1).max(axis=1)

    def state(self) -> dict[str, np.ndarray]:
        return {"temperature": np.asarray(self.temperature)}

    def restore(self, state: dict[str, np.ndarray], prototypes: Prototypes) -> MspScorer:
        self.temperature = float(state["temperature"])
        return super().restore(state, prototypes)


class KnnScorer:
    """Cosine similarity to the k-th nearest training vector (Sun et al., 2022).

    ``few_shot`` names classes known from a handful of examples (species added with
    ``species add``). Their other crops score far below a threshold that fits classes of
    hundreds: the k-th neighbour of such a crop is the farthest of a few support crops, or a
    crop of another species. For each few-shot class ``c`` with at least 2 crops the scorer
    therefore also scores a query by its ``k_c``-th nearest crop of ``c``
    (``k_c = max(1, min(k, round(k * n_c / n_med), n_c - 1))``, ``n_med`` the median size of the
    other classes) and puts that score on the scale of the trained classes: it is shifted by
    ``T - t_c``, where ``t_c`` is the low (``1 - tpr``) quantile of the class's own
    leave-one-out scores and ``T`` the same quantile of the other training crops'
    leave-one-out k-th-neighbour scores. A query whose nearest training crop belongs to a
    few-shot class scores the better of the plain and the shifted score; every other query
    scores exactly as without ``few_shot`` (so the trained species' threshold and acceptance
    stay as they were).
    Measured: bench/few_shot.py (bench/RESULTS.md).
    """

    name = "knn"
    LOO_SAMPLE = 5_000  # training crops whose leave-one-out scores set T

    def __init__(self, k: int = 5, few_shot: Sequence[str] = (), tpr: float = 0.95) -> None:
        if k < 1:
            raise InvalidInput("k must be >= 1")
        self.k = int(k)
        self.few_shot = tuple(str(c) for c in few_shot)
        self.tpr = float(tpr)
        self.index: faiss.IndexFlatIP | None = None
        self.small: list[tuple[str, np.ndarray, int, float]] = []  # (class, vectors (n_c, d), k_c, shift)
        self.labels: np.ndarray | None = None  # training labels by index row (only with few-shot classes)

    def fit(self, train_vectors: np.ndarray, train_labels: Labels, prototypes: Prototypes | None = None) -> KnnScorer:
        """Index the training vectors (prototypes are unused; labels only for ``few_shot``)."""
        labels = check_train(train_vectors, train_labels)
        self.index = faiss.IndexFlatIP(train_vectors.shape[1])
        x = np.ascontiguousarray(train_vectors)
        self.index.add_c(x.shape[0], faiss.swig_ptr(x))  # *_c: immune to faiss.contrib.torch_utils
        if self.index.ntotal < self.k:
            log.warning(
                "knn scorer: %d training vectors < k=%d; using k=%d", self.index.ntotal, self.k, self.index.ntotal
            )
        self.small = self._fit_few_shot(x, labels) if self.few_shot else []
        self.labels = labels if self.small else None
        return self

    def _fit_few_shot(self, x: np.ndarray, labels: np.ndarray) -> list[tuple[str, np.ndarray, int, float]]:
        few = np.isin(labels, self.few_shot)
        names, counts = np.unique(labels[~few], return_counts=True)
        if not names.size or (~few).sum() <= self.k:
            return []
        rows = np.flatnonzero(~few)
        if rows.size > self.LOO_SAMPLE:
            rows = np.random.default_rng(0).choice(rows, self.LOO_SAMPLE, replace=False)
        sims, _ = faiss_search(self.index, np.ascontiguousarray(x[rows]), self.k + 1)
        quantile = 1.0 - self.tpr
        reference = float(np.quantile(sims[:, self.k], quantile))  # k-th neighbour, itself excluded
        median = float(np.median(counts))
        small = []
        for name in sorted(set(labels[few].tolist())):
            own = np.ascontiguousarray(x[labels == name])
            n = own.shape[0]
            if n < 2:
                continue  # no leave-one-out without a second crop: scored like any class
            k_c = max(1, min(self.k, int(round(self.k * n / median)), n - 1))
            gram = own @ own.T
            np.fill_diagonal(gram, -np.inf)
            loo = -np.sort(-gram, axis=1)[:, k_c - 1]
            small.append((name, own, k_c, reference - float(np.quantile(loo, quantile, method="lower"))))
        return small

    def state(self) -> dict[str, np.ndarray]:
        """The fitted statistics (the flat index itself is stored apart: ``index.scoring.scorer_store``)."""
        out: dict[str, np.ndarray] = {
            "k": np.asarray(self.k),
            "tpr": np.asarray(self.tpr),
            "few_shot": np.asarray(self.few_shot, dtype=str),
        }
        if self.small:
            out["labels"] = np.asarray(self.labels, dtype=str)
            out["small_names"] = np.asarray([s[0] for s in self.small], dtype=str)
            out["small_k"] = np.asarray([s[2] for s in self.small], dtype=np.int64)
            out["small_shift"] = np.asarray([s[3] for s in self.small], dtype=np.float64)
            for i, small in enumerate(self.small):
                out[f"small_{i}"] = small[1]
        return out

    def restore(self, state: dict[str, np.ndarray], prototypes: Prototypes, index: faiss.Index) -> KnnScorer:
        """The scorer as :meth:`fit` left it, from :meth:`state` and its stored flat ``index``."""
        self.index = index
        self.k, self.tpr = int(state["k"]), float(state["tpr"])
        self.few_shot = tuple(str(c) for c in state["few_shot"])
        names = [str(n) for n in state.get("small_names", ())]
        self.small = [
            (
                n,
                np.ascontiguousarray(state[f"small_{i}"], dtype=np.float32),
                int(state["small_k"][i]),
                float(state["small_shift"][i]),
            )
            for i, n in enumerate(names)
        ]
        self.labels = np.asarray(state["labels"]) if self.small else None
        return self

    def score(self, queries: np.ndarray) -> np.ndarray:
        """queries (m, d) float32 -> (m,) float64 (cosine-like, higher = more known)."""
        if self.index is None:
            raise EmptyIndex("OOD scorer 'knn' is not fitted")
        check_vectors(queries, self.index.d, name="queries")
        k = min(self.k, self.index.ntotal)
        sims, rows = faiss_search(self.index, np.ascontiguousarray(queries), k)
        score = sims[:, k - 1].astype(np.float64)
        if self.small:
            nearest = self.labels[rows[:, 0]]
            for name, own, k_c, shift in self.small:
                mine = np.flatnonzero(nearest == name)
                if mine.size:
                    near = -np.sort(-(queries[mine] @ own.T), axis=1)[:, k_c - 1]
                    score[mine] = np.maximum(score[mine], near + shift)
        return score
