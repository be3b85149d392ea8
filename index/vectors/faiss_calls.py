"""Thin numpy-in, numpy-out calls into faiss, and its process-wide BLAS tuning.

faiss.contrib.torch_utils (imported by pytorch-metric-learning) monkeypatches the
Python methods of every faiss index (search loses ``params``, reconstruct returns
tensors). These helpers call the SWIG ``*_c`` methods, which it leaves alone.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import faiss
import numpy as np

log = logging.getLogger(__name__)

BLAS_DATABASE_BLOCK = 16_384  # database rows per sgemm of faiss's exhaustive search (faiss default 1,024)
BLAS_QUERY_BLOCK = 1_024  # query rows per sgemm (keeps the score buffer at 64 MiB)


class Hit(NamedTuple):
    """One search result: a catalog id and its cosine similarity."""

    id: int
    score: float


def tune_faiss_blas(database_block: int = BLAS_DATABASE_BLOCK, query_block: int = BLAS_QUERY_BLOCK) -> None:
    """Set faiss's process-wide BLAS block sizes for exhaustive inner-product search.

    faiss runs one sgemm per (query block x 1,024 database rows) by default; at 1,024 the
    per-call overhead dominates on 2 cores. 16,384 rows measured 1.6x faster batched
    (100k x 128, 1,000 queries: 2,380 -> 3,906 q/s; bench/RESULTS.md). It changes global
    faiss state, so it is an explicit call made by whoever owns the process (the
    workspace, a bench script), never a side effect of importing this package.
    """
    faiss.cvar.distance_compute_blas_database_bs = int(database_block)
    faiss.cvar.distance_compute_blas_query_bs = int(query_block)
    log.debug("faiss BLAS blocks: %d database rows x %d queries", database_block, query_block)


def faiss_search(
    index: faiss.Index, q: np.ndarray, k: int, params: faiss.SearchParameters | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Raw faiss search: q (n, d) float32 C-contiguous -> (scores (n, k) float32, ids (n, k) int64, -1 = none)."""
    n = q.shape[0]
    scores = np.empty((n, k), dtype=np.float32)
    found = np.empty((n, k), dtype=np.int64)
    index.search_c(n, faiss.swig_ptr(q), k, faiss.swig_ptr(scores), faiss.swig_ptr(found), params)
    return scores, found


def add(index: faiss.Index, x: np.ndarray, ids: np.ndarray) -> None:
    """index.add_with_ids for x (n, d) float32 and ids (n,) int64."""
    x, ids = np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64)
    index.add_with_ids_c(x.shape[0], faiss.swig_ptr(x), faiss.swig_ptr(ids))


def train(index: faiss.Index, x: np.ndarray) -> None:
    """index.train on x (n, d) float32."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    index.train_c(x.shape[0], faiss.swig_ptr(x))


def reconstruct_all(index: faiss.Index) -> np.ndarray:
    """Every stored vector of a flat/HNSW storage, (ntotal, d) float32, in storage order."""
    out = np.empty((index.ntotal, index.d), dtype=np.float32)
    if index.ntotal:
        index.reconstruct_n_c(0, index.ntotal, faiss.swig_ptr(out))
    return out


def top_k(sims: np.ndarray, labels: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
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


def hits(scores: np.ndarray, found: np.ndarray) -> list[list[Hit]]:
    """faiss-style (m, k) scores and ids (-1 = none) -> per-query Hit lists, no padding."""
    return [
        [Hit(i, s) for i, s in zip(row_i, row_s, strict=False) if i >= 0]
        for row_i, row_s in zip(found.tolist(), scores.tolist(), strict=False)
    ]


def set_threads(threads: int) -> None:
    """faiss's OpenMP threads for this process (``app.workspace.threads`` chooses how many)."""
    faiss.omp_set_num_threads(int(threads))
