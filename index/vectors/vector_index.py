"""FAISS vector index keyed by catalog ids: flat, IVF(-Flat), IVF-PQ or HNSW, on CPU or GPU.

Vectors are float32 ``(n, d)`` and L2-normalised, so inner product is cosine
similarity. FAISS ids are catalog primary keys (int64 >= 0), never row
positions. Search results are ``list[list[Hit]]``: one list per query, best
first, never padded (a query may get fewer than ``k`` hits when the collection
or the allowed set is smaller than ``k``).

This is the only module that moves an index to or from a GPU. The CPU index is
always kept as the authoritative copy (save, add, remove and filtered searches
use it); with ``device="cuda"`` a GPU clone serves unfiltered searches.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.errors import EmptyIndex, InvalidInput, NotFound
from index.vectors.checks import check_ids, check_vectors
from index.vectors.faiss_calls import Hit, faiss_search, tune_faiss_blas
from index.vectors.faiss_calls import add as _add
from index.vectors.faiss_calls import hits as _hits
from index.vectors.faiss_calls import reconstruct_all as _reconstruct_all
from index.vectors.faiss_calls import train as _train
from index.vectors.filter_cache import IVF_KINDS, AllowedIds, FilterCache
from index.vectors.index_kinds import (
    DEVICES,
    KINDS,
    PQ_BITS,
    IndexConfig,
    gpu_available,
    kind_of,
    new_index,
    resolve_device,
)
from index.vectors.planner import FilterPlan, PlannerConfig

__all__ = [
    "AllowedIds",
    "DEVICES",
    "Hit",
    "IndexConfig",
    "KINDS",
    "VectorIndex",
    "check_vectors",
    "faiss_search",
    "gpu_available",
    "load",
    "resolve_device",
    "tune_faiss_blas",
]

log = logging.getLogger(__name__)

_VERSIONS = itertools.count()
_FLAT_NUMPY_BELOW = 20  # flat batches smaller than this are scored with numpy BLAS (FilterCache.flat_numpy)


class VectorIndex:
    """A FAISS index over L2-normalised float32 vectors, addressed by int64 ids."""

    def __init__(self, index: faiss.Index, device: str = "cpu", planner: PlannerConfig | None = None) -> None:
        """Wrap an existing CPU faiss index (see :meth:`build` / :func:`load`).

        ``planner`` decides how filtered queries run (see index/vectors/planner.py).
        """
        self._cpu = index
        self.kind = kind_of(index)
        self.planner = planner or PlannerConfig()
        self._filters = FilterCache(index, self.kind)  # replaced whenever the index changes
        self.version = next(_VERSIONS)  # changes with every add/remove (AllowedIds caches by it)
        if self.kind in IVF_KINDS and index.direct_map.type == faiss.DirectMap.NoMap:
            # id -> (list, offset) hashtable so the exact plan can reconstruct allowed vectors
            # (kept through add/remove, written with the index; ~16 bytes per vector)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
        self.device = resolve_device(device)
        self._gpu: faiss.Index | None = None
        self._gpu_res: Any = None
        if self.device == "cuda":
            self._to_gpu()

    def on_device(self, device: str) -> VectorIndex:
        """This index served from ``device`` (a GPU copy of the same CPU index for "cuda";
        filtered queries still run on the CPU one). Raises InvalidInput like the constructor."""
        return VectorIndex(self._cpu, device=device, planner=self.planner)

    def copy(self) -> VectorIndex:
        """An independent CPU copy (``faiss.clone_index``): writers change a copy and publish
        it as a new generation, so readers of this one never see a half-applied update."""
        return VectorIndex(faiss.clone_index(self._cpu), device="cpu", planner=self.planner)

    # ---- construction -------------------------------------------------
    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        kind: str = "auto",
        device: str = "cpu",
        config: IndexConfig | None = None,
    ) -> VectorIndex:
        """Build an index from ``vectors`` (n, d) float32 with catalog ``ids`` (n,) int64.

        ``kind`` overrides ``config.kind``; 'auto' picks flat below
        ``config.auto_threshold`` vectors, else ``config.large_kind``.

        Raises:
            InvalidInput: bad vectors/ids, unknown kind, or too few vectors for IVF.
        """
        cfg = config or IndexConfig()
        kind = kind if kind != "auto" else cfg.kind
        check_vectors(vectors)
        n, dim = vectors.shape
        if dim == 0:
            raise InvalidInput("vectors must have at least one dimension")
        ids = check_ids(ids, n)
        if kind == "auto":
            kind = "flat" if n < cfg.auto_threshold else cfg.large_kind
        if kind not in KINDS:
            raise InvalidInput(f"unknown index kind {kind!r}; valid: auto, {', '.join(KINDS)}")
        index = new_index(kind, dim, n, cfg)
        if kind in IVF_KINDS:
            if n < index.nlist:
                raise InvalidInput(f"IVF with {index.nlist} lists needs at least that many vectors, got {n}")
            if kind == "ivfpq" and n < 1 << PQ_BITS:
                raise InvalidInput(
                    f"IVF-PQ trains {1 << PQ_BITS} codes per sub-quantizer: it needs at least "
                    f"{1 << PQ_BITS} vectors, got {n} (use --kind flat or ivf)"
                )
            rng = np.random.default_rng(cfg.seed)
            sample = vectors if n <= cfg.train_size else vectors[np.sort(rng.choice(n, cfg.train_size, replace=False))]
            _train(index, sample)
        if n:
            _add(index, vectors, ids)
        log.info("built %s index: %d vectors, dim %d", kind, n, dim)
        return cls(index, device=device)

    # ---- properties ---------------------------------------------------
    @property
    def ntotal(self) -> int:
        """Number of vectors in the index."""
        return int(self._cpu.ntotal)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self._cpu.d)

    @property
    def faiss_index(self) -> faiss.Index:
        """The authoritative CPU faiss index (do not mutate it directly)."""
        return self._cpu

    def ids(self) -> np.ndarray:
        """All ids in the index, (ntotal,) int64, in no particular order."""
        if self.kind not in IVF_KINDS:
            return faiss.vector_to_array(self._cpu.id_map).astype(np.int64)
        return self._filters.ivf_ids()

    # ---- mutation -----------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (n, d) float32 under new ``ids`` (n,) int64.

        Raises:
            InvalidInput: bad vectors, dim mismatch, or an id already present.
        """
        check_vectors(vectors, self.dim)
        ids = check_ids(ids, vectors.shape[0])
        clash = np.intersect1d(ids, self.ids())
        if clash.size:
            raise InvalidInput(f"{clash.size} ids already in the index (first: {int(clash[0])})")
        if ids.size:
            _add(self._cpu, vectors, ids)
            self._changed()

    def remove(self, ids: np.ndarray) -> int:
        """Remove the given ids (missing ids are ignored); returns how many were removed.

        HNSW cannot delete in place, so it is rebuilt from the remaining
        vectors (O(n log n)); flat and IVF remove in place.
        """
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if ids.size == 0 or self.ntotal == 0:
            return 0
        if self.kind != "hnsw":
            # an IVF hashtable direct map removes only through an IDSelectorArray
            sel = (
                faiss.IDSelectorArray(ids.size, faiss.swig_ptr(ids))
                if self.kind in IVF_KINDS
                else faiss.IDSelectorBatch(ids)
            )
            removed = int(self._cpu.remove_ids_c(sel))
        else:
            current = faiss.vector_to_array(self._cpu.id_map).astype(np.int64)
            keep = ~np.isin(current, ids)
            removed = int((~keep).sum())
            if removed:
                inner = faiss.downcast_index(self._cpu.index)
                kept = _reconstruct_all(inner)[keep]
                fresh = faiss.IndexHNSWFlat(self.dim, inner.hnsw.nb_neighbors(1), faiss.METRIC_INNER_PRODUCT)
                fresh.hnsw.efConstruction = inner.hnsw.efConstruction
                fresh.hnsw.efSearch = inner.hnsw.efSearch
                rebuilt = faiss.IndexIDMap(fresh)
                if keep.any():
                    _add(rebuilt, kept, current[keep])
                self._cpu = rebuilt
                log.info("rebuilt HNSW index after removing %d vectors", removed)
        self._changed()
        return removed

    def _changed(self) -> None:
        self._filters = FilterCache(self._cpu, self.kind)
        self.version = next(_VERSIONS)
        self._refresh_gpu()

    # ---- search -------------------------------------------------------
    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | AllowedIds | None = None,
    ) -> list[list[Hit]]:
        """Return the ``k`` most similar ids for each query, best first.

        Args:
            queries: (m, d) float32, L2-normalised.
            k: hits wanted per query (>= 1); fewer come back when fewer exist.
            allowed_ids: optional (a,) int64 catalog ids, or an :class:`AllowedIds`
                prepared from them. Planned per query batch (index/vectors/planner.py):
                a small allowed set is scored exactly (its vectors gathered from
                the index), a large one searched inside faiss with an IDSelector
                and a probe width widened by 1/selectivity. Never fewer than
                min(k, allowed ids present) hits.

        Returns:
            ``m`` lists of :class:`Hit` (id, cosine score), no padding.

        Raises:
            EmptyIndex: the index holds no vectors.
            InvalidInput: bad queries (dtype, shape, dim, not normalised) or k < 1.
        """
        if self.ntotal == 0:
            raise EmptyIndex("the vector index is empty")
        check_vectors(queries, self.dim, name="queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInput(f"k must be a positive integer, got {k!r}")
        m = queries.shape[0]
        q = np.ascontiguousarray(queries)
        if allowed_ids is None:
            kk = min(int(k), self.ntotal)
            if self._gpu is not None:
                scores, found = faiss_search(self._gpu, q, kk)
            elif self.kind == "flat" and m < _FLAT_NUMPY_BELOW:
                scores, found = self._filters.flat_numpy(q, kk)
            else:
                scores, found = faiss_search(self._cpu, q, kk)
            return _hits(scores, found)
        allowed = allowed_ids if isinstance(allowed_ids, AllowedIds) else AllowedIds.of(allowed_ids)
        present, per_list = allowed.against(self)
        kk = min(int(k), int(present.size))
        if kk == 0 or m == 0:
            return [[] for _ in range(m)]
        return _hits(*self._filters.search(q, kk, allowed, present, per_list, self.planner))

    def plan(self, allowed: int | np.ndarray | AllowedIds, k: int) -> FilterPlan:
        """How a query filtered to ``allowed`` would run (see index/vectors/planner.py): ids (or a
        prepared :class:`AllowedIds`) are matched against the index; a bare count plans as
        if it were spread over every IVF list, as a random filter is."""
        if isinstance(allowed, (int, np.integer)):
            return self._filters.plan(int(allowed), k, None, self.planner)
        prepared = allowed if isinstance(allowed, AllowedIds) else AllowedIds.of(allowed)
        present, per_list = prepared.against(self)
        return self._filters.plan(int(present.size), k, per_list, self.planner)

    def match(self, unique: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The ids of ``unique`` (sorted, distinct) present in the index, and for IVF how many
        of them each inverted list holds (see :meth:`AllowedIds.against`)."""
        return self._filters.match(unique)

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Tune recall/speed: IVF ``nprobe`` or HNSW ``ef_search`` (others ignored)."""
        if nprobe is not None and self.kind in IVF_KINDS:
            self._cpu.nprobe = int(nprobe)
        if ef_search is not None and self.kind == "hnsw":
            faiss.downcast_index(self._cpu.index).hnsw.efSearch = int(ef_search)
        self._refresh_gpu()

    # ---- persistence and devices ---------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the CPU index to ``path`` with faiss.write_index (not atomic; see generations)."""
        faiss.write_index(self._cpu, str(path))

    def _to_gpu(self) -> None:
        if self.kind == "hnsw":
            raise InvalidInput("HNSW indexes cannot run on the GPU; use --device cpu or a flat/ivf index")
        self._gpu_res = faiss.StandardGpuResources()
        self._gpu = faiss.index_cpu_to_gpu(self._gpu_res, 0, self._cpu)
        log.info("moved %s index (%d vectors) to GPU 0", self.kind, self.ntotal)

    def _refresh_gpu(self) -> None:
        if self._gpu is not None:
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_res, 0, self._cpu)

    def __repr__(self) -> str:
        return f"VectorIndex(kind={self.kind!r}, ntotal={self.ntotal}, dim={self.dim}, device={self.device!r})"


def load(path: str | Path, device: str = "cpu") -> VectorIndex:
    """Read an index written by :meth:`VectorIndex.save`.

    Raises:
        NotFound: the file is missing.
        InvalidInput: the file is not a faiss index of a kind we support.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"index file not found: {path}")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise InvalidInput(f"cannot read faiss index {path}: {str(exc).splitlines()[0]}") from exc
    return VectorIndex(index, device=device)
