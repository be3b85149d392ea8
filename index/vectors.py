"""FAISS vector index keyed by catalog ids: flat, IVF or HNSW, on CPU or GPU.

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

import logging
import itertools
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import numpy as np

from index.errors import EmptyIndex, InvalidInput, NotFound
from index.planner import FilterPlan, PlannerConfig, plan_filtered

log = logging.getLogger(__name__)

KINDS = ("flat", "ivf", "hnsw")
DEVICES = ("auto", "cpu", "cuda")
_NORM_TOL = 1e-3  # allowed | ||x|| - 1 | for "L2-normalised"
_VERSIONS = itertools.count()
_FLAT_NUMPY_BELOW = 20  # flat batches smaller than this are scored with numpy BLAS (see _flat_numpy)


def _tune_faiss_blas_blocks() -> None:
    # faiss's exhaustive IP search runs one sgemm per (query block x 1,024 database rows); at
    # 1,024 the per-call overhead dominates on 2 cores. 16,384 rows measured 1.6x faster batched
    # (100k x 128, 1,000 queries: 2,380 -> 3,906 q/s); query blocks of 1,024 keep the score
    # buffer at 64 MiB. These are faiss process-wide settings, set once here.
    faiss.cvar.distance_compute_blas_database_bs = 16_384
    faiss.cvar.distance_compute_blas_query_bs = 1_024


_tune_faiss_blas_blocks()


class Hit(NamedTuple):
    """One search result: a catalog id and its cosine similarity."""

    id: int
    score: float


@dataclass(frozen=True)
class IndexConfig:
    """How to build an index. Defaults follow bench/search_speed.py."""

    kind: str = "auto"  # 'auto' | 'flat' | 'ivf' | 'hnsw'
    auto_threshold: int = 200_000  # 'auto' builds flat below this many vectors
    large_kind: str = "ivf"  # what 'auto' builds at or above the threshold
    nlist: int | None = None  # IVF lists; None -> sqrt(n) (1M: 1000; bench/rebuild_1m.py)
    nprobe: int = 32  # IVF lists visited per query
    train_size: int = 50_000  # IVF k-means trains on at most this many vectors (~50 per list at 1M)
    hnsw_m: int = 32  # HNSW neighbours per node
    ef_construction: int = 64  # HNSW build beam width
    ef_search: int = 64  # HNSW search beam width
    seed: int = 0  # IVF training subsample and k-means seed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        return cls(**data)


def gpu_available() -> bool:
    """True when the installed faiss has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def resolve_device(device: str) -> str:
    """Turn 'auto' | 'cpu' | 'cuda' into 'cpu' or 'cuda'.

    Raises:
        InvalidInput: unknown name, or 'cuda' without GPU faiss or a visible GPU.
    """
    if device not in DEVICES:
        raise InvalidInput(f"unknown device {device!r}; valid: {', '.join(DEVICES)}")
    if device == "cpu":
        chosen = "cpu"
    elif device == "cuda":
        if not gpu_available():
            raise InvalidInput(
                "device 'cuda' requested but faiss has no GPU support or sees no GPU "
                "(install faiss-gpu-cu12, or use --device cpu)"
            )
        chosen = "cuda"
    else:
        chosen = "cuda" if gpu_available() else "cpu"
    log.info("faiss device: %s (asked for %s)", chosen, device)
    return chosen


def check_vectors(vectors: np.ndarray, dim: int | None = None, name: str = "vectors") -> None:
    """Check ``vectors`` is float32 ``(n, dim)``, finite and L2-normalised.

    Raises:
        InvalidInput: wrong type, dtype, shape, dim, non-finite or non-unit rows.
    """
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
        raise InvalidInput(f"{name} must be a 2-D numpy array (n, d)")
    if vectors.dtype != np.float32:
        raise InvalidInput(f"{name} must be float32, got {vectors.dtype}")
    if dim is not None and vectors.shape[1] != dim:
        raise InvalidInput(f"{name} have dim {vectors.shape[1]}, the index has dim {dim}")
    if vectors.shape[0] == 0:
        return
    if not np.isfinite(vectors).all():
        raise InvalidInput(f"{name} contain NaN or infinity")
    norms = np.linalg.norm(vectors, axis=1)
    if np.abs(norms - 1.0).max() > _NORM_TOL:
        raise InvalidInput(f"{name} must be L2-normalised (found a row with norm {norms.max():.4g})")


def _check_ids(ids: np.ndarray, n: int) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.shape[0] != n:
        raise InvalidInput(f"ids must be 1-D with one id per vector ({n}), got shape {ids.shape}")
    if n and not np.issubdtype(ids.dtype, np.integer):
        raise InvalidInput(f"ids must be integers, got {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    if n and ids.min() < 0:
        raise InvalidInput("ids must be >= 0 (catalog keys)")
    if np.unique(ids).shape[0] != n:
        raise InvalidInput("ids contain duplicates")
    return np.ascontiguousarray(ids)


def _new_index(kind: str, dim: int, n: int, cfg: IndexConfig) -> faiss.Index:
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = cfg.ef_construction
        hnsw.hnsw.efSearch = cfg.ef_search
        return faiss.IndexIDMap(hnsw)
    nlist = cfg.nlist or max(1, int(round(math.sqrt(max(n, 1)))))
    nlist = min(nlist, max(1, n))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.nprobe = min(cfg.nprobe, nlist)
    ivf.cp.seed = cfg.seed
    ivf.cp.min_points_per_centroid = 5  # train_size caps the sample; no faiss warning below 39/list
    return ivf


# faiss.contrib.torch_utils (imported by pytorch-metric-learning) monkeypatches the
# Python methods of every faiss index (search loses ``params``, reconstruct returns
# tensors). These helpers call the SWIG ``*_c`` methods, which it leaves alone.
def faiss_search(
    index: faiss.Index, q: np.ndarray, k: int, params: faiss.SearchParameters | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Raw faiss search: q (n, d) float32 C-contiguous -> (scores (n, k) float32, ids (n, k) int64, -1 = none)."""
    n = q.shape[0]
    scores = np.empty((n, k), dtype=np.float32)
    found = np.empty((n, k), dtype=np.int64)
    index.search_c(n, faiss.swig_ptr(q), k, faiss.swig_ptr(scores), faiss.swig_ptr(found), params)
    return scores, found


def _add(index: faiss.Index, x: np.ndarray, ids: np.ndarray) -> None:
    x, ids = np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64)
    index.add_with_ids_c(x.shape[0], faiss.swig_ptr(x), faiss.swig_ptr(ids))


def _train(index: faiss.Index, x: np.ndarray) -> None:
    x = np.ascontiguousarray(x, dtype=np.float32)
    index.train_c(x.shape[0], faiss.swig_ptr(x))


def _reconstruct_all(index: faiss.Index) -> np.ndarray:
    out = np.empty((index.ntotal, index.d), dtype=np.float32)
    if index.ntotal:
        index.reconstruct_n_c(0, index.ntotal, faiss.swig_ptr(out))
    return out


def _kind_of(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf"
    if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)):
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSW):
            return "hnsw"
        if isinstance(inner, faiss.IndexFlat):
            return "flat"
    raise InvalidInput(f"unsupported faiss index type {type(index).__name__}")


@dataclass(frozen=True, eq=False)
class AllowedIds:
    """A prepared id filter for :meth:`VectorIndex.search`; build it once with
    :meth:`of` and reuse it while the filter stays the same (it costs O(a) to build).

    Uses an IDSelectorBitmap when the ids are small enough for the bitmap to
    stay under ~8 bytes per allowed id + 128 KiB (cheap to build and test),
    else a hashed IDSelectorBatch.
    """

    ids: np.ndarray  # (a,) int64, as given (duplicates and unknown ids are harmless)
    selector: Any  # faiss.IDSelector
    bitmap: np.ndarray | None = None  # bytes the bitmap selector points into; keeps them alive
    unique: np.ndarray | None = None  # (u,) int64 sorted unique ids (the exact plan gathers these)
    # per index state (version -> (present ids, allowed ids per IVF list)), so a filter reused
    # across queries is matched against the index once, not once per query
    cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, ids: np.ndarray) -> AllowedIds:
        """Prepare ``ids`` (a,) integer catalog ids."""
        ids = np.ascontiguousarray(np.asarray(ids).ravel(), dtype=np.int64)
        top = int(ids.max()) if ids.size else -1
        if 0 <= top < 64 * ids.size + (1 << 20):
            mask = np.zeros(top + 1, dtype=bool)
            mask[ids[ids >= 0]] = True
            bits = np.packbits(mask, bitorder="little")
            unique = np.flatnonzero(mask).astype(np.int64)
            return cls(ids, faiss.IDSelectorBitmap(bits.size, faiss.swig_ptr(bits)), bits, unique)
        return cls(ids, faiss.IDSelectorBatch(ids), None, np.unique(ids))

    def against(self, index: VectorIndex) -> tuple[np.ndarray, np.ndarray | None]:
        """(present ids (p,) int64 sorted, allowed ids per inverted list (nlist,) or None) for
        ``index`` as it is now (cached while the index is unchanged; the last 4 indexes kept)."""
        key = index.version
        if key not in self.cache:
            if len(self.cache) >= 4:
                self.cache.pop(next(iter(self.cache)))
            self.cache[key] = index.match(self.unique)
        return self.cache[key]


class VectorIndex:
    """A FAISS index over L2-normalised float32 vectors, addressed by int64 ids."""

    def __init__(self, index: faiss.Index, device: str = "cpu", planner: PlannerConfig | None = None) -> None:
        """Wrap an existing CPU faiss index (see :meth:`build` / :func:`load`).

        ``planner`` decides how filtered queries run (see index/planner.py).
        """
        self._cpu = index
        self.kind = _kind_of(index)
        self.planner = planner or PlannerConfig()
        self._lookup: tuple[np.ndarray, np.ndarray | None] | None = None  # sorted ids, their storage rows
        self._lists: np.ndarray | None = None  # IVF: inverted list of each sorted id, (ntotal,) int32
        self._store: np.ndarray | None = None  # flat/HNSW: zero-copy view of the stored vectors
        self._sizes: np.ndarray | None = None  # IVF: entries per inverted list
        self.version = next(_VERSIONS)  # changes with every add/remove (AllowedIds caches by it)
        self._row_ids: np.ndarray | None = None  # flat: storage row -> id
        if self.kind == "ivf" and index.direct_map.type == faiss.DirectMap.NoMap:
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
        ids = _check_ids(ids, n)
        if kind == "auto":
            kind = "flat" if n < cfg.auto_threshold else cfg.large_kind
        if kind not in KINDS:
            raise InvalidInput(f"unknown index kind {kind!r}; valid: auto, {', '.join(KINDS)}")
        index = _new_index(kind, dim, n, cfg)
        if kind == "ivf":
            if n < index.nlist:
                raise InvalidInput(f"IVF with {index.nlist} lists needs at least that many vectors, got {n}")
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
        if self.kind != "ivf":
            return faiss.vector_to_array(self._cpu.id_map).astype(np.int64)
        invlists = self._cpu.invlists
        parts = [
            faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
            for i in range(invlists.nlist)
            if invlists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)

    # ---- mutation -----------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (n, d) float32 under new ``ids`` (n,) int64.

        Raises:
            InvalidInput: bad vectors, dim mismatch, or an id already present.
        """
        check_vectors(vectors, self.dim)
        ids = _check_ids(ids, vectors.shape[0])
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
            sel = faiss.IDSelectorArray(ids.size, faiss.swig_ptr(ids)) if self.kind == "ivf" else faiss.IDSelectorBatch(ids)
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
        self._lookup = self._row_ids = self._lists = self._store = self._sizes = None
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
                prepared from them. Planned per query batch (index/planner.py):
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
                scores, found = self._flat_numpy(q, kk)
            else:
                scores, found = faiss_search(self._cpu, q, kk)
            return _hits(scores, found)
        allowed = allowed_ids if isinstance(allowed_ids, AllowedIds) else AllowedIds.of(allowed_ids)
        present, per_list = allowed.against(self)
        kk = min(int(k), int(present.size))
        if kk == 0 or m == 0:
            return [[] for _ in range(m)]
        plan = self._plan(present.size, kk, per_list)
        if plan.mode == "exact":
            return _hits(*self._exact(q, kk, present))
        if self.kind == "ivf":
            scores, found = self._probe_lists(q, kk, allowed.selector, per_list, plan.probe)
        else:
            scores, found = faiss_search(self._cpu, q, kk, self._params(allowed.selector, plan))
        short = np.flatnonzero((found < 0).any(axis=1))
        if short.size:  # the walk found fewer than kk allowed ids: never return fewer than exist
            log.info("filtered %s search came back short for %d queries; rescoring exactly", self.kind, short.size)
            scores[short], found[short] = self._exact(np.ascontiguousarray(q[short]), kk, present)
        return _hits(scores, found)

    def plan(self, allowed: int | np.ndarray | AllowedIds, k: int) -> FilterPlan:
        """How a query filtered to ``allowed`` would run (see index/planner.py): ids (or a
        prepared :class:`AllowedIds`) are matched against the index; a bare count plans as
        if it were spread over every IVF list, as a random filter is."""
        if isinstance(allowed, (int, np.integer)):
            return self._plan(int(allowed), k, None)
        prepared = allowed if isinstance(allowed, AllowedIds) else AllowedIds.of(allowed)
        present, per_list = prepared.against(self)
        return self._plan(int(present.size), k, per_list)

    def _plan(self, allowed: int, k: int, per_list: np.ndarray | None) -> FilterPlan:
        if self.kind == "ivf":
            holding = None if per_list is None else int(np.count_nonzero(per_list))
            entries = None if per_list is None else int(self._list_sizes()[per_list > 0].sum())
            return plan_filtered("ivf", self.ntotal, allowed, k, nprobe=self._cpu.nprobe, nlist=self._cpu.nlist,
                                 config=self.planner, holding_lists=holding, holding_entries=entries)
        if self.kind == "hnsw":
            ef = faiss.downcast_index(self._cpu.index).hnsw.efSearch
            return plan_filtered("hnsw", self.ntotal, allowed, k, ef_search=ef, config=self.planner)
        return plan_filtered("flat", self.ntotal, allowed, k, config=self.planner)

    def match(self, unique: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The ids of ``unique`` (sorted, distinct) present in the index, and for IVF how many
        of them each inverted list holds (see :meth:`AllowedIds.against`)."""
        known, _ = self._sorted_ids()
        if unique.size == 0 or known.size == 0:
            present, at = unique[:0], np.empty(0, np.int64)
        else:
            at = np.minimum(np.searchsorted(known, unique), known.size - 1)
            hit = known[at] == unique
            present, at = unique[hit], at[hit]
        if self.kind != "ivf":
            return present, None
        return present, np.bincount(self._lists[at], minlength=self._cpu.nlist)

    def _list_sizes(self) -> np.ndarray:
        """IVF: (nlist,) entries per inverted list (cached until the index changes)."""
        if self._sizes is None:
            invlists = self._cpu.invlists
            self._sizes = np.fromiter((invlists.list_size(i) for i in range(invlists.nlist)), np.int64, invlists.nlist)
        return self._sizes

    def _probe_lists(self, q: np.ndarray, k: int, selector: faiss.IDSelector, per_list: np.ndarray,
                     probe: int) -> tuple[np.ndarray, np.ndarray]:
        """IVF search of the ``probe`` nearest inverted lists among those holding allowed ids
        (all of them when ``probe`` covers them: then the answer is exact)."""
        ivf, m = self._cpu, q.shape[0]
        holding = per_list > 0
        nholding = int(holding.sum())
        params = faiss.SearchParametersIVF(sel=selector, nprobe=int(min(probe, nholding)))
        if nholding == ivf.nlist and probe < ivf.nlist:  # every list holds some: the plain probe is the same
            return faiss_search(ivf, q, k, params)
        if probe >= nholding:  # every holding list, in any order (the scan is exhaustive)
            assign = np.ascontiguousarray(np.broadcast_to(np.flatnonzero(holding), (m, nholding)), dtype=np.int64)
            coarse = np.zeros(assign.shape, np.float32)
        else:
            coarse_all, lists_all = faiss_search(ivf.quantizer, q, ivf.nlist)  # every list, nearest first
            take = holding[lists_all]
            take &= np.cumsum(take, axis=1) <= probe
            assign = np.ascontiguousarray(lists_all[take].reshape(m, probe))
            coarse = np.ascontiguousarray(coarse_all[take].reshape(m, probe))
        scores = np.empty((m, k), np.float32)
        found = np.empty((m, k), np.int64)
        ivf.search_preassigned_c(m, faiss.swig_ptr(q), k, faiss.swig_ptr(assign), faiss.swig_ptr(coarse),
                                 faiss.swig_ptr(scores), faiss.swig_ptr(found), False, params)
        return scores, found

    def _params(self, selector: faiss.IDSelector, plan: FilterPlan) -> faiss.SearchParameters:
        # flat and HNSW only: IVF's filtered search is planned list by list (_probe_lists)
        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=int(plan.probe))
        return faiss.SearchParameters(sel=selector)

    # ---- exact scoring of an allowed set --------------------------------
    def _storage(self) -> np.ndarray:
        """(ntotal, d) float32 zero-copy view of a flat/HNSW index's stored vectors."""
        if self._store is None or self._store.shape[0] != self.ntotal:
            self._store = self._storage_view()
        return self._store

    def _storage_view(self) -> np.ndarray:
        flat = faiss.downcast_index(self._cpu.index)
        if self.kind == "hnsw":
            flat = faiss.downcast_index(flat.storage)
        n, d = self.ntotal, self.dim
        return faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d) if n else np.empty((0, d), np.float32)

    def _sorted_ids(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self._lookup is None:
            if self.kind == "ivf":
                invlists = self._cpu.invlists
                sizes = self._list_sizes()
                ids = self.ids()  # list by list, in list order
                order = np.argsort(ids, kind="stable")
                self._lists = np.repeat(np.arange(invlists.nlist, dtype=np.int32), sizes)[order]
                self._lookup = (ids[order], None)
            else:
                rows_to_ids = faiss.vector_to_array(self._cpu.id_map).astype(np.int64)
                order = np.argsort(rows_to_ids, kind="stable")
                self._lookup = (rows_to_ids[order], order)
        return self._lookup

    def _exact(self, q: np.ndarray, k: int, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` of ``present`` ids (all in the index) for q (m, d): (scores, ids), each (m, k)."""
        known, rows = self._sorted_ids()
        if self.kind == "ivf":
            vecs = np.empty((present.size, self.dim), dtype=np.float32)
            self._cpu.reconstruct_batch_c(present.size, faiss.swig_ptr(present), faiss.swig_ptr(vecs))
        else:
            vecs = self._storage()[rows[np.searchsorted(known, present)]]
        return _top_k(q @ vecs.T, present, k)

    def _flat_numpy(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # faiss scans fewer queries than its BLAS threshold with one thread per query, so a
        # single query uses one core; numpy's BLAS mat-vec uses them all (bench: single query)
        storage = self._storage()
        sims = (storage @ q[0])[None, :] if q.shape[0] == 1 else q @ storage.T  # m=1: BLAS gemv, not gemm
        scores, rows = _top_k(sims, None, k)
        if self._row_ids is None:
            self._row_ids = faiss.vector_to_array(self._cpu.id_map).astype(np.int64)
        return scores, self._row_ids[rows]

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Tune recall/speed: IVF ``nprobe`` or HNSW ``ef_search`` (others ignored)."""
        if nprobe is not None and self.kind == "ivf":
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


def _top_k(sims: np.ndarray, labels: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns of sims (m, c), best first: (scores (m, k) float32, labels[col] or col (m, k) int64)."""
    if sims.shape[0] == 1 and k < sims.shape[1]:  # one query: 1-D partition, no along-axis index arrays
        row = sims[0]
        cols = np.argpartition(row, -k)[-k:]
        cols = cols[np.argsort(-row[cols], kind="stable")]
        found = cols if labels is None else labels[cols]
        return row[cols].astype(np.float32, copy=False)[None, :], found.astype(np.int64, copy=False)[None, :]
    if k < sims.shape[1]:
        cols = np.argpartition(sims, -k, axis=1)[:, -k:]  # no negated copy of sims
        part = np.take_along_axis(sims, cols, axis=1)
    else:
        cols, part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape), sims
    order = np.argsort(-part, axis=1, kind="stable")
    cols = np.take_along_axis(cols, order, axis=1)
    scores = np.take_along_axis(part, order, axis=1).astype(np.float32, copy=False)
    return scores, (cols if labels is None else labels[cols]).astype(np.int64, copy=False)


def _hits(scores: np.ndarray, found: np.ndarray) -> list[list[Hit]]:
    """faiss-style (m, k) scores and ids (-1 = none) -> per-query Hit lists, no padding."""
    return [
        [Hit(i, s) for i, s in zip(row_i, row_s) if i >= 0]
        for row_i, row_s in zip(found.tolist(), scores.tolist())
    ]


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
