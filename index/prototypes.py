"""Class prototypes: a mean embedding or K k-means sub-centres per class.

A :class:`Prototypes` is immutable; adding or removing a class returns a new
one. Rows are grouped by class (owners non-decreasing), which lets
:meth:`Prototypes.similarities` take the per-class maximum with one
``np.maximum.reduceat``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cluster import KMeans

from index.errors import InvalidInput, NotFound
from index.vectors import check_vectors

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
        sims = self.similarities(queries)
        k = min(max(int(k), 1), sims.shape[1])
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return [[(self.names[j], float(row[j])) for j in idx] for row, idx in zip(sims, order)]

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
        return Prototypes(
            tuple(n for n in self.names if n != name), self.vectors[keep], owners - (owners > drop)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (vectors as nested lists)."""
        return {"names": list(self.names), "vectors": self.vectors.tolist(), "owners": self.owners.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prototypes:
        vectors = np.asarray(data["vectors"], dtype=np.float32).reshape(len(data["owners"]), -1)
        return cls(tuple(data["names"]), vectors, np.asarray(data["owners"], dtype=np.int64))

    def save(self, path: str | Path) -> None:
        """Write ``path`` (.npz: vectors, owners) and ``path`` with suffix .json (names)."""
        path = Path(path)
        np.savez(path, vectors=self.vectors, owners=self.owners)
        meta = {"names": list(self.names), "dim": self.dim, "rows": int(self.vectors.shape[0])}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Prototypes:
        """Read what :meth:`save` wrote (no pickle). Raises NotFound / InvalidInput."""
        path = Path(path)
        npz, meta = path.with_suffix(".npz"), path.with_suffix(".json")
        if not npz.is_file() or not meta.is_file():
            raise NotFound(f"prototype files {npz} / {meta} not found")
        with np.load(npz, allow_pickle=False) as arrays:
            vectors, owners = arrays["vectors"], arrays["owners"]
        names = json.loads(meta.read_text(encoding="utf-8"))["names"]
        return cls(tuple(names), vectors.astype(np.float32), owners.astype(np.int64))
