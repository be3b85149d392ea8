"""Exact filtered search over one faiss index: the prepared filter and the per-index cache.

Two objects, both caches, so a filter reused across queries costs its set-up once:

- :class:`AllowedIds`: a filter prepared once (a faiss id selector plus the sorted
  unique ids), and per index version what it matched there (the ids present, and for
  IVF how many of them each inverted list holds).
- :class:`FilterCache`: what one index version knows about itself for filtered
  queries (its ids sorted with their storage rows or inverted lists, IVF list sizes,
  a zero-copy view of flat/HNSW storage) and the plans that use it
  (index/vectors/planner.py: gather-and-score exactly, scan the holding lists, or search
  with a selector). A :class:`~index.vectors.vector_index.VectorIndex` drops its cache whenever
  it changes.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import faiss
import numpy as np

from index.vectors.faiss_calls import faiss_search, top_k
from index.vectors.planner import FilterPlan, PlannerConfig, plan_filtered

log = logging.getLogger(__name__)

IVF_KINDS = ("ivf", "ivfpq")  # inverted-list indexes: IVF-Flat and IVF-PQ share the list machinery
_AGAINST_KEPT = 64  # index versions an AllowedIds remembers its match for (one per shard of a sharded index)


class _Matchable(Protocol):
    version: int

    def match(self, unique: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


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
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # shards match it from threads

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

    def against(self, index: _Matchable) -> tuple[np.ndarray, np.ndarray | None]:
        """(present ids (p,) int64 sorted, allowed ids per inverted list (nlist,) or None) for
        ``index`` as it is now (cached while the index is unchanged; the last 64 indexes kept, so
        every shard of a sharded index keeps its own match). Safe to call from several threads."""
        key = index.version
        got = self.cache.get(key)
        if got is None:
            got = index.match(self.unique)
            with self.lock:
                while len(self.cache) >= _AGAINST_KEPT:
                    self.cache.pop(next(iter(self.cache)))
                self.cache[key] = got
        return got


class FilterCache:
    """Filtered-search state of one unchanging CPU faiss index (flat, IVF-Flat, IVF-PQ or HNSW).

    IVF-PQ runs the IVF plans over its codes, so its scores (gathered or scanned) are the
    PQ approximations: exact plans there are exact over the codes, not the float vectors."""

    def __init__(self, index: faiss.Index, kind: str) -> None:
        self.index = index
        self.kind = kind
        self._lookup: tuple[np.ndarray, np.ndarray | None] | None = None  # sorted ids, their storage rows
        self._lists: np.ndarray | None = None  # IVF: inverted list of each sorted id, (ntotal,) int32
        self._store: np.ndarray | None = None  # flat/HNSW: zero-copy view of the stored vectors
        self._sizes: np.ndarray | None = None  # IVF: entries per inverted list
        self._row_ids: np.ndarray | None = None  # flat: storage row -> id

    # ---- what the index holds -------------------------------------------
    def list_sizes(self) -> np.ndarray:
        """IVF: (nlist,) entries per inverted list."""
        if self._sizes is None:
            invlists = self.index.invlists
            self._sizes = np.fromiter((invlists.list_size(i) for i in range(invlists.nlist)), np.int64, invlists.nlist)
        return self._sizes

    def ivf_ids(self) -> np.ndarray:
        """IVF: every id, list by list in list order, (ntotal,) int64."""
        invlists = self.index.invlists
        parts = [
            faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
            for i in range(invlists.nlist)
            if invlists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)

    def sorted_ids(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(ids sorted (n,) int64, their storage rows (flat/HNSW) or None (IVF))."""
        if self._lookup is None:
            if self.kind in IVF_KINDS:
                ids = self.ivf_ids()
                order = np.argsort(ids, kind="stable")
                nlist = self.index.invlists.nlist
                self._lists = np.repeat(np.arange(nlist, dtype=np.int32), self.list_sizes())[order]
                self._lookup = (ids[order], None)
            else:
                rows_to_ids = self.row_ids()
                order = np.argsort(rows_to_ids, kind="stable")
                self._lookup = (rows_to_ids[order], order)
        return self._lookup

    def row_ids(self) -> np.ndarray:
        """flat/HNSW: storage row -> id, (ntotal,) int64."""
        if self._row_ids is None:
            self._row_ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        return self._row_ids

    def storage(self) -> np.ndarray:
        """(ntotal, d) float32 zero-copy view of a flat/HNSW index's stored vectors."""
        n, d = int(self.index.ntotal), int(self.index.d)
        if self._store is None or self._store.shape[0] != n:
            flat = faiss.downcast_index(self.index.index)
            if self.kind == "hnsw":
                flat = faiss.downcast_index(flat.storage)
            self._store = faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d) if n else np.empty((0, d), np.float32)
        return self._store

    def match(self, unique: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The ids of ``unique`` (sorted, distinct) present in the index, and for IVF how many
        of them each inverted list holds."""
        known, _ = self.sorted_ids()
        if unique.size == 0 or known.size == 0:
            present, at = unique[:0], np.empty(0, np.int64)
        else:
            at = np.minimum(np.searchsorted(known, unique), known.size - 1)
            hit = known[at] == unique
            present, at = unique[hit], at[hit]
        if self.kind not in IVF_KINDS:
            return present, None
        return present, np.bincount(self._lists[at], minlength=self.index.nlist)

    # ---- plans ----------------------------------------------------------
    def plan(self, allowed: int, k: int, per_list: np.ndarray | None, planner: PlannerConfig) -> FilterPlan:
        """How a query over ``allowed`` present ids runs (index/vectors/planner.py)."""
        ntotal = int(self.index.ntotal)
        if self.kind in IVF_KINDS:
            holding = None if per_list is None else int(np.count_nonzero(per_list))
            entries = None if per_list is None else int(self.list_sizes()[per_list > 0].sum())
            return plan_filtered(
                "ivf",
                ntotal,
                allowed,
                k,
                nprobe=self.index.nprobe,
                nlist=self.index.nlist,
                config=planner,
                holding_lists=holding,
                holding_entries=entries,
            )
        if self.kind == "hnsw":
            ef = faiss.downcast_index(self.index.index).hnsw.efSearch
            return plan_filtered("hnsw", ntotal, allowed, k, ef_search=ef, config=planner)
        return plan_filtered("flat", ntotal, allowed, k, config=planner)

    def search(
        self,
        q: np.ndarray,
        k: int,
        allowed: AllowedIds,
        present: np.ndarray,
        per_list: np.ndarray | None,
        planner: PlannerConfig,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Filtered top-``k`` (k <= present.size) for q (m, d): (scores, ids), each (m, k)."""
        plan = self.plan(present.size, k, per_list, planner)
        if plan.mode == "exact":
            return self.exact(q, k, present)
        if self.kind in IVF_KINDS:
            scores, found = self._probe_lists(q, k, allowed.selector, per_list, plan.probe)
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=allowed.selector, efSearch=int(plan.probe))
            scores, found = faiss_search(self.index, q, k, params)
        else:
            scores, found = faiss_search(self.index, q, k, faiss.SearchParameters(sel=allowed.selector))
        short = np.flatnonzero((found < 0).any(axis=1))
        if short.size:  # the walk found fewer than k allowed ids: never return fewer than exist
            log.info("filtered %s search came back short for %d queries; rescoring exactly", self.kind, short.size)
            scores[short], found[short] = self.exact(np.ascontiguousarray(q[short]), k, present)
        return scores, found

    def _probe_lists(
        self, q: np.ndarray, k: int, selector: faiss.IDSelector, per_list: np.ndarray, probe: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """IVF search of the ``probe`` nearest inverted lists among those holding allowed ids
        (all of them when ``probe`` covers them: then the answer is exact)."""
        ivf, m = self.index, q.shape[0]
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
        ivf.search_preassigned_c(
            m,
            faiss.swig_ptr(q),
            k,
            faiss.swig_ptr(assign),
            faiss.swig_ptr(coarse),
            faiss.swig_ptr(scores),
            faiss.swig_ptr(found),
            False,
            params,
        )
        return scores, found

    def exact(self, q: np.ndarray, k: int, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` of ``present`` ids (all in the index) for q (m, d): (scores, ids), each (m, k)."""
        known, rows = self.sorted_ids()
        if self.kind in IVF_KINDS:
            vecs = np.empty((present.size, int(self.index.d)), dtype=np.float32)
            self.index.reconstruct_batch_c(present.size, faiss.swig_ptr(present), faiss.swig_ptr(vecs))
        else:
            vecs = self.storage()[rows[np.searchsorted(known, present)]]
        return top_k(q @ vecs.T, present, k)

    def flat_numpy(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Unfiltered flat top-``k`` with numpy BLAS (faiss scans fewer queries than its BLAS
        threshold with one thread per query, so a single query uses one core; numpy's
        mat-vec uses them all; bench: single query)."""
        storage = self.storage()
        sims = (storage @ q[0])[None, :] if q.shape[0] == 1 else q @ storage.T  # m=1: BLAS gemv, not gemm
        scores, rows = top_k(sims, None, k)
        return scores, self.row_ids()[rows]
