"""Class prototypes: a mean embedding or K k-means sub-centres per class.

A :class:`Prototypes` is immutable; adding or removing a class returns a new
one. Rows are grouped by class (owners non-decreasing), which lets
:meth:`Prototypes.similarities` take the per-class maximum with one
``np.maximum.reduceat``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.errors import InvalidInput, NotFound
from index.vectors.checks import check_vectors

log = logging.getLogger(__name__)


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def class_centres(vectors: np.ndarray, n_centres: int = 1, seed: int = 0) -> np.ndarray:
    """Prototype rows for one class.

    Args:
        vectors: (n, d) float32, L2-normalised, n >= 1.
        n_centres: 1 -> the renormalised mean; K > 1 -> K k-means sub-centres
            (capped by the number of distinct vectors), deterministic for ``seed``.

    Returns:
        (p, d) float32, L2-normalised, 1 <= p <= n_centres.

    Raises:
        InvalidInput: no vectors, bad vectors, or n_centres < 1.
    """
    check_vectors(vectors)
    if vectors.shape[0] == 0:
        raise InvalidInput("a class needs at least one vector")
    if n_centres < 1:
        raise InvalidInput(f"n_centres must be >= 1, got {n_centres}")
    k = min(n_centres, np.unique(vectors, axis=0).shape[0])
    if k == 1:
        mean = vectors.astype(np.float64).mean(axis=0)
        if np.linalg.norm(mean) < 1e-6:  # vectors cancel out: use the medoid instead
            log.warning("class vectors cancel out; using the medoid as prototype")
            mean = vectors[int(np.argmax((vectors @ vectors.T).sum(axis=1)))]
        return _normalise(mean[None, :].astype(np.float64))
    from sklearn.cluster import KMeans  # sub-centres only: loading prototypes skips sklearn

    km = KMeans(n_clusters=k, random_state=seed, n_init=4).fit(vectors.astype(np.float64))
    return _normalise(km.cluster_centers_)


@dataclass(frozen=True, eq=False)
class Prototypes:
    """Prototype vectors for a set of named classes.

    Attributes:
        names: class names, (C,).
        vectors: (P, d) float32, L2-normalised prototype rows.
        owners: (P,) int64, index into ``names`` for each row, non-decreasing,
            every class owning at least one row.
    """

    names: tuple[str, ...]
    vectors: np.ndarray
    owners: np.ndarray

    def __post_init__(self) -> None:
        check_vectors(self.vectors, name="prototype vectors")
        owners = np.asarray(self.owners)
        if owners.shape != (self.vectors.shape[0],):
            raise InvalidInput("owners must have one entry per prototype row")
        if len(set(self.names)) != len(self.names):
            raise InvalidInput("class names must be unique")
        expected = np.arange(len(self.names))
        if owners.size and (np.any(np.diff(owners) < 0) or not np.array_equal(np.unique(owners), expected)):
            raise InvalidInput("owners must be grouped by class and cover every class")
        if not owners.size and self.names:
            raise InvalidInput("every class needs at least one prototype row")

    @classmethod
    def fit(
        cls, vectors: np.ndarray, labels: Sequence[str] | np.ndarray, n_centres: int = 1, seed: int = 0
    ) -> Prototypes:
        """Prototypes from training ``vectors`` (n, d) float32 with ``labels`` (n,) class names.

        Classes are sorted by name. Raises InvalidInput on bad input.
        """
        labels = np.asarray([str(x) for x in labels])
        if labels.shape[0] != vectors.shape[0]:
            raise InvalidInput(f"{labels.shape[0]} labels for {vectors.shape[0]} vectors")
        names = sorted(set(labels.tolist()))
        rows = [class_centres(vectors[labels == name], n_centres, seed) for name in names]
        return cls._from_rows(tuple(names), rows, vectors.shape[1])

    @classmethod
    def _from_rows(cls, names: tuple[str, ...], rows: list[np.ndarray], dim: int) -> Prototypes:
        owners = np.concatenate([np.full(len(r), i, np.int64) for i, r in enumerate(rows)]) if rows else None
        matrix = np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
        return cls(names, matrix, owners if owners is not None else np.zeros(0, np.int64))

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def rows_of(self, name: str) -> np.ndarray:
        """Prototype rows of class ``name``, (p, d) float32. Raises NotFound."""
        if name not in self.names:
            raise NotFound(f"no class {name!r} among {len(self.names)} prototype classes")
        return self.vectors[self.owners == self.names.index(name)]

    def similarities(self, queries: np.ndarray) -> np.ndarray:
        """Max cosine per class: queries (m, d) float32 -> (m, C) float32, columns = names."""
        check_vectors(queries, self.dim, name="queries")
        if not self.names:
            raise InvalidInput("no prototype classes")
        sims = queries @ self.vectors.T
        starts = np.flatnonzero(np.r_[True, np.diff(self.owners) != 0])
        return np.maximum.reduceat(sims, starts, axis=1) if sims.shape[0] else sims[:, starts]

    def topk(self, queries: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-``k`` classes per query as (name, cosine), best first; k capped by C."""
        return self.ranked(self.similarities(queries), k)

    def ranked(self, sims: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-``k`` classes per row of (m, C) scores over ``names`` (cosines from
        :meth:`similarities`, or probabilities), as (name, score), best first; k capped by C."""
        k = min(max(int(k), 1), sims.shape[1])
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return [[(self.names[j], float(row[j])) for j in idx] for row, idx in zip(sims, order, strict=False)]

    def with_class(
        self, name: str, vectors: np.ndarray, n_centres: int = 1, seed: int = 0, replace: bool = False
    ) -> Prototypes:
        """A copy with class ``name`` added from a few (n, d) float32 vectors.

        Raises:
            InvalidInput: the class exists and ``replace`` is False, or bad vectors.
        """
        check_vectors(vectors, self.dim)
        if name in self.names and not replace:
            raise InvalidInput(f"class {name!r} already has prototypes (use replace=True)")
        base = self.without_class(name) if name in self.names else self
        rows = [base.vectors[base.owners == i] for i in range(len(base.names))]
        return self._from_rows(base.names + (name,), rows + [class_centres(vectors, n_centres, seed)], self.dim)

    def without_class(self, name: str) -> Prototypes:
        """A copy without class ``name``. Raises NotFound."""
        if name not in self.names:
            raise NotFound(f"no class {name!r} among {len(self.names)} prototype classes")
        drop = self.names.index(name)
        keep = self.owners != drop
        owners = self.owners[keep]
        return Prototypes(tuple(n for n in self.names if n != name), self.vectors[keep], owners - (owners > drop))

    def class_similarities(self) -> np.ndarray:
        """(C, C) float32: for each pair of classes, the cosine of their closest prototype rows.

        The diagonal is ``-inf`` (a class is not confusable with itself).
        """
        starts = np.flatnonzero(np.r_[True, np.diff(self.owners) != 0])
        sims = self.vectors @ self.vectors.T
        per_class = np.maximum.reduceat(np.maximum.reduceat(sims, starts, axis=1), starts, axis=0)
        np.fill_diagonal(per_class, -np.inf)
        return per_class

    def confusable_pairs(self, top: int = 10) -> list[tuple[str, str, float]]:
        """The ``top`` most similar pairs of classes (a before b in ``names``), most similar first."""
        sims = self.class_similarities()
        a, b = np.triu_indices(len(self.names), 1)
        order = np.argsort(-sims[a, b], kind="stable")[:top]
        return [(self.names[a[i]], self.names[b[i]], float(sims[a[i], b[i]])) for i in order]

    def confusable_with(self, name: str, top: int = 3) -> list[tuple[str, float]]:
        """The ``top`` classes most similar to ``name``, most similar first. Raises NotFound."""
        self.rows_of(name)
        row = self.class_similarities()[self.names.index(name)]
        order = [j for j in np.argsort(-row, kind="stable") if j != self.names.index(name)][:top]
        return [(self.names[j], float(row[j])) for j in order]
