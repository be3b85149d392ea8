"""The fast paths of VectorIndex.search (numpy mat-vec for few queries, tuned faiss BLAS
blocks for batches) give the same top-10 as exact brute force, ids and order."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from index.vectors.vector_index import VectorIndex

N, D, K = 5_000, 32, 10


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N + 64, D)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = rng.choice(10**10, N, replace=False).astype(np.int64)
    return ids, x[:N], np.ascontiguousarray(x[N:])


def exact(ids, x, q, k=K):
    sims = q @ x.T
    order = np.argsort(-sims, axis=1)[:, :k]
    return ids[order], np.take_along_axis(sims, order, axis=1)


@pytest.mark.parametrize("m", [1, 2, 19, 20, 64], ids=lambda m: f"{m}q")
def test_flat_top10_equals_exact_on_every_path(data, m):
    """m < 20 runs the numpy path, m >= 20 faiss; a wrong id map, an unsorted argpartition
    or a row/id mix-up on either path fails here."""
    ids, x, q = data
    index = VectorIndex.build(ids, x, kind="flat")
    hits = index.search(q[:m], K)
    want_ids, want_scores = exact(ids, x, q[:m])
    np.testing.assert_array_equal([[h.id for h in row] for row in hits], want_ids)
    np.testing.assert_allclose([[h.score for h in row] for row in hits], want_scores, atol=1e-5)


def test_numpy_path_follows_add_and_remove(data):
    """The cached row -> id map must be rebuilt after mutation (a stale one names removed ids)."""
    ids, x, q = data
    index = VectorIndex.build(ids[:4000], x[:4000], kind="flat")
    index.search(q[:1], K)  # fills the cache
    index.remove(ids[:2000])
    index.add(ids[4000:], x[4000:])
    want_ids, _ = exact(ids[2000:], x[2000:], q[:3])
    np.testing.assert_array_equal([[h.id for h in row] for row in index.search(q[:3], K)], want_ids)


def test_blas_blocks_are_tuned_by_an_explicit_call():
    from index.vectors.vector_index import tune_faiss_blas

    faiss.cvar.distance_compute_blas_database_bs = 1_024
    tune_faiss_blas()
    assert faiss.cvar.distance_compute_blas_database_bs == 16_384
    assert faiss.cvar.distance_compute_blas_query_bs == 1_024


def test_importing_the_index_leaves_faiss_settings_alone():
    """Importing must not change process-wide faiss state (a module-level tuning call would)."""
    import subprocess
    import sys

    code = (
        "import faiss; import index.vectors.vector_index, index.vectors.generations; "
        "print(faiss.cvar.distance_compute_blas_database_bs)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(1_024)


def test_hits_are_plain_python_numbers(data):
    ids, x, q = data
    hit = VectorIndex.build(ids, x, kind="flat").search(q[:1], 1)[0][0]
    assert type(hit.id) is int and type(hit.score) is float
