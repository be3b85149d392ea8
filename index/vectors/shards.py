"""A sharded vector index: N :class:`~index.vectors.vector_index.VectorIndex` shards by id hash, searched in parallel.

For collections too large for one FAISS index (or one core) each catalog id goes to
shard ``splitmix64(id) % N``; every shard is an ordinary ``VectorIndex`` of the same
kind, with its own filter cache and planner (index/vectors/filter_cache.py,
index/vectors/planner.py). A query runs on every shard at once (a thread pool: faiss releases
the GIL) and the per-shard top-k lists are merged by score, the equivalent of faiss's
``IndexShards`` with the filtered-search planner kept per shard. A filtered query asks
each shard for min(k, allowed ids it holds) exact-as-one-index hits, so the merged
answer is as exact as the unsharded one (identical for flat, and for IVF whenever the
plans are exact or scan the holding lists).

It offers the same interface as ``VectorIndex`` (build, add, remove, search, ids, copy,
on_device, set_search_params), so the workspace, species add/remove and the
generations (index/vectors/generations.py, one sub-folder per shard) use either unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from index.errors import EmptyIndex, InvalidInput
from index.vectors.faiss_calls import Hit
from index.vectors.filter_cache import AllowedIds
from index.vectors.vector_index import IndexConfig, VectorIndex, check_vectors

log = logging.getLogger(__name__)

MAX_SHARDS = 256


def shard_of(ids: np.ndarray, n_shards: int) -> np.ndarray:
    """Shard number of each id, (n,) int64 in [0, n_shards): splitmix64(id) mod n_shards.

    A hash, not ``id % n``, so catalog ids that come in runs (one source, one species)
    spread evenly over the shards.
    """
    z = np.asarray(ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_shards)).astype(np.int64)


def check_shards(n_shards: int) -> int:
    """``n_shards`` as an int in [1, MAX_SHARDS]; raises InvalidInput otherwise."""
    if isinstance(n_shards, bool) or not isinstance(n_shards, (int, np.integer)) or not 1 <= n_shards <= MAX_SHARDS:
        raise InvalidInput(f"shards must be an integer from 1 to {MAX_SHARDS}, got {n_shards!r}")
    return int(n_shards)


class ShardedIndex:
    """N ``VectorIndex`` shards of one kind and dim, addressed by int64 catalog ids."""

    def __init__(self, shards: Sequence[VectorIndex]) -> None:
        if len(shards) < 2:
            raise InvalidInput("a sharded index needs at least 2 shards (1 shard is a plain VectorIndex)")
        kinds = {s.kind for s in shards}
        dims = {s.dim for s in shards}
        if len(kinds) != 1 or len(dims) != 1:
            raise InvalidInput(f"shards differ in kind or dim: {sorted(kinds)}, {sorted(dims)}")
        self.shards = tuple(shards)
        self.kind = kinds.pop()
        # one thread per shard (started on first use; faiss releases the GIL while it searches)
        self._pool = ThreadPoolExecutor(max_workers=len(self.shards), thread_name_prefix="oceanid-shard")

    # ---- construction -------------------------------------------------
    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        shards: int,
        kind: str = "auto",
        device: str = "cpu",
        config: IndexConfig | None = None,
    ) -> ShardedIndex:
        """Build ``shards`` indexes of one kind from ``vectors`` (n, d) float32 and ``ids`` (n,) int64.

        'auto' picks the kind from the whole collection's size (as one index would).

        Raises:
            InvalidInput: bad shard count, vectors or ids, or a shard too small for its kind.
        """
        n_shards = check_shards(shards)
        if n_shards < 2:
            raise InvalidInput("use VectorIndex.build for one shard")
        cfg = config or IndexConfig()
        check_vectors(vectors)
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.shape[0] != vectors.shape[0]:
            raise InvalidInput(f"ids must be 1-D with one id per vector ({vectors.shape[0]}), got shape {ids.shape}")
        kind = kind if kind != "auto" else cfg.kind
        if kind == "auto":
            kind = "flat" if vectors.shape[0] < cfg.auto_threshold else cfg.large_kind
        where = shard_of(ids, n_shards) if ids.size else np.empty(0, np.int64)
        parts = [
            VectorIndex.build(ids[where == s], vectors[where == s], kind=kind, device=device, config=cfg)
            for s in range(n_shards)
        ]
        log.info("built %d %s shards: %s vectors", n_shards, kind, "/".join(str(p.ntotal) for p in parts))
        return cls(parts)

    # ---- properties ---------------------------------------------------
    @property
    def n_shards(self) -> int:
        return len(self.shards)

    @property
    def ntotal(self) -> int:
        return sum(s.ntotal for s in self.shards)

    @property
    def dim(self) -> int:
        return self.shards[0].dim

    @property
    def device(self) -> str:
        return self.shards[0].device

    @property
    def version(self) -> tuple[int, ...]:
        """Changes whenever any shard changes."""
        return tuple(s.version for s in self.shards)

    def ids(self) -> np.ndarray:
        """All ids, (ntotal,) int64, shard by shard."""
        return np.concatenate([s.ids() for s in self.shards])

    # ---- copies and devices -------------------------------------------
    def copy(self) -> ShardedIndex:
        """Independent CPU copies of every shard (writers publish a copy as a new generation)."""
        return ShardedIndex([s.copy() for s in self.shards])

    def on_device(self, device: str) -> ShardedIndex:
        """Every shard served from ``device`` (see :meth:`VectorIndex.on_device`)."""
        return ShardedIndex([s.on_device(device) for s in self.shards])

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        for s in self.shards:
            s.set_search_params(nprobe=nprobe, ef_search=ef_search)

    # ---- mutation -----------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (n, d) under new ``ids``, each to its hash shard.

        Raises:
            InvalidInput: bad vectors, dim mismatch, duplicate ids or an id already present.
        """
        check_vectors(vectors, self.dim)
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.shape[0] != vectors.shape[0]:
            raise InvalidInput(f"ids must be 1-D with one id per vector ({vectors.shape[0]}), got shape {ids.shape}")
        if ids.size and np.unique(ids).size != ids.size:
            raise InvalidInput("ids contain duplicates")
        where = shard_of(ids, self.n_shards)
        for s, shard in enumerate(self.shards):  # check every shard before changing any
            clash = np.intersect1d(ids[where == s], shard.ids())
            if clash.size:
                raise InvalidInput(f"{clash.size} ids already in the index (first: {int(clash[0])})")
        for s, shard in enumerate(self.shards):
            if (where == s).any():
                shard.add(ids[where == s], vectors[where == s])

    def remove(self, ids: np.ndarray) -> int:
        """Remove the given ids (missing ones ignored); returns how many were removed."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        where = shard_of(ids, self.n_shards)
        return sum(shard.remove(ids[where == s]) for s, shard in enumerate(self.shards) if (where == s).any())

    # ---- search -------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | AllowedIds | None = None
    ) -> list[list[Hit]]:
        """Top ``k`` per query over every shard, best first, never padded (see
        :meth:`VectorIndex.search`: same arguments, errors and exactness per shard).

        Each shard is searched in its own thread and the per-shard lists merged by score.
        """
        if self.ntotal == 0:
            raise EmptyIndex("the vector index is empty")
        check_vectors(queries, self.dim, name="queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInput(f"k must be a positive integer, got {k!r}")
        allowed = None
        if allowed_ids is not None:
            allowed = allowed_ids if isinstance(allowed_ids, AllowedIds) else AllowedIds.of(allowed_ids)
        live = [s for s in self.shards if s.ntotal]
        parts = list(self._pool.map(lambda s: s.search(queries, k, allowed_ids=allowed), live))
        return [merge_hits([p[i] for p in parts], int(k)) for i in range(queries.shape[0])]

    def __repr__(self) -> str:
        return (
            f"ShardedIndex(kind={self.kind!r}, shards={self.n_shards}, ntotal={self.ntotal}, dim={self.dim}, "
            f"device={self.device!r})"
        )


def merge_hits(lists: Sequence[list[Hit]], k: int) -> list[Hit]:
    """The best ``k`` of several best-first hit lists (ids distinct across lists), best first;
    equal scores keep the smaller id first."""
    merged = [h for hits in lists for h in hits]
    merged.sort(key=lambda h: (-h.score, h.id))
    return merged[:k]
