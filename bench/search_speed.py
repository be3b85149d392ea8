"""Search speed of index.vectors: flat vs scikit-learn, IVF/HNSW vs flat, filtered vs unfiltered.

Usage:
    .venv/bin/python bench/search_speed.py            # default run (a few minutes, 2 threads)
    .venv/bin/python bench/search_speed.py --full     # also HNSW at the full large size
    .venv/bin/python bench/search_speed.py --large-n 200000 --hnsw-n 200000   # quick

Data are clustered random unit vectors (cluster centre + low-rank within-cluster
variation + small isotropic noise), a stand-in for learned embeddings; queries
are fresh draws from the same distribution. Writes bench/results/search_speed.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads crawl on shared cores

import argparse
import json
import logging
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from index.vectors import AllowedIds, IndexConfig, VectorIndex  # noqa: E402

K = 10
RESULTS = Path(__file__).resolve().parent / "results" / "search_speed.json"


def clustered(n: int, d: int, n_clusters: int, rng: np.random.Generator, spread: float = 0.2) -> np.ndarray:
    """(n, d) float32 unit vectors around ``n_clusters`` random unit centres.

    Within a cluster the variation has a decaying spectrum (std ~ i^-0.6 along
    a random basis, participation ratio ~10), like learned embeddings, rather
    than isotropic 128-d noise, which no ANN index handles well.
    """
    x = np.empty((n, d), np.float32)
    centres = rng.standard_normal((n_clusters, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    scales = (spread * np.arange(1, d + 1) ** -0.6).astype(np.float32)
    labels = rng.integers(0, n_clusters, n)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_clusters + 1))
    for c in range(n_clusters):
        rows = order[bounds[c] : bounds[c + 1]]
        basis = rng.standard_normal((d, d)).astype(np.float32) / np.sqrt(d)
        z = rng.standard_normal((rows.size, d)).astype(np.float32) * scales
        x[rows] = centres[c] + z @ basis
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def split(x: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Database rows and ``m`` held-out query rows from the same clusters."""
    return x[:-m], np.ascontiguousarray(x[-m:])


def ids_of(hits) -> np.ndarray:
    return np.array([[h.id for h in row] + [-1] * (K - len(row)) for row in hits])


def timed(fn, repeat: int = 1):
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def single_query_ms(index: VectorIndex, q: np.ndarray, allowed: np.ndarray | None) -> float:
    times = []
    for row in q:
        t = time.perf_counter()
        index.search(row[None, :], K, allowed_ids=allowed)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def flat_vs_sklearn(n: int, d: int, m: int, rng: np.random.Generator) -> dict:
    x, q = split(clustered(n + m, d, 100, rng), m)
    ids = rng.permutation(n).astype(np.int64) * 7 + 3  # catalog keys, not rows
    index = VectorIndex.build(ids, x, kind="flat")
    t_faiss, hits = timed(lambda: index.search(q, K), repeat=5)  # best-of: the cores are shared
    nn = NearestNeighbors(n_neighbors=K, metric="cosine", algorithm="brute").fit(x)
    t_sk, (_, rows) = timed(lambda: nn.kneighbors(q), repeat=3)
    agree = float(np.mean([set(a) == set(b) for a, b in zip(ids_of(hits), ids[rows])]))
    return {
        "n": n, "d": d, "queries": m,
        "faiss_flat_qps": m / t_faiss, "sklearn_brute_qps": m / t_sk,
        "speedup": t_sk / t_faiss, "same_top10_fraction": agree,
    }


def tune(index: VectorIndex, q: np.ndarray, truth: np.ndarray, knob: str, values: list[int], target: float) -> dict:
    tried = []
    for v in values:
        index.set_search_params(**{knob: v})
        seconds, hits = timed(lambda: index.search(q, K), repeat=2)
        rec = recall_at_k(ids_of(hits), truth)
        tried.append({knob: v, "recall@10": rec, "qps": len(q) / seconds})
        if rec >= target:
            break
    return {"chosen": tried[-1], "tried": tried}


def filtered(index: VectorIndex, q: np.ndarray, allowed: np.ndarray, truth: np.ndarray | None, m_single: int) -> dict:
    t_unf, _ = timed(lambda: index.search(q, K), repeat=1)
    t_fil, hits = timed(lambda: index.search(q, K, allowed_ids=allowed), repeat=1)
    single_unf = single_query_ms(index, q[:m_single], None)
    single_fil = single_query_ms(index, q[:m_single], allowed)
    prepared = AllowedIds.of(allowed)
    single_prep = single_query_ms(index, q[:m_single], prepared)
    out = {
        "selector": type(prepared.selector).__name__,
        "single_query_ms_unfiltered": single_unf, "single_query_ms_filtered": single_fil,
        "single_query_ratio": single_fil / single_unf,
        "single_query_ms_filtered_prepared": single_prep,
        "single_query_ratio_prepared": single_prep / single_unf,
        "batch_qps_unfiltered": len(q) / t_unf, "batch_qps_filtered": len(q) / t_fil,
        "batch_ratio": t_fil / t_unf,
    }
    if truth is not None:
        out["filtered_recall@10_vs_exact"] = recall_at_k(ids_of(hits), truth)
    return out


def large(n: int, hnsw_n: int, d: int, m: int, rng: np.random.Generator, m_single: int) -> dict:
    x, q = split(clustered(n + m, d, max(100, n // 1000), rng), m)
    ids = np.arange(n, dtype=np.int64)
    allowed = np.sort(rng.choice(ids, n // 10, replace=False))  # 10% selectivity
    out: dict = {"n": n, "d": d, "queries": m}

    t_build, flat = timed(lambda: VectorIndex.build(ids, x, kind="flat"))
    t_search, hits = timed(lambda: flat.search(q, K))
    truth = ids_of(hits)
    truth_filtered = ids_of(flat.search(q, K, allowed_ids=allowed))
    out["flat"] = {"build_s": t_build, "qps": m / t_search,
                   "filtered": filtered(flat, q, allowed, None, m_single)}
    logging.info("flat: %.0f qps", m / t_search)

    cfg = IndexConfig()
    t_build, ivf = timed(lambda: VectorIndex.build(ids, x, kind="ivf", config=cfg))
    res = tune(ivf, q, truth, "nprobe", [1, 2, 4, 8, 16, 32, 64, 128, 256], 0.95)
    out["ivf"] = {"build_s": t_build, "nlist": int(ivf.faiss_index.nlist), **res,
                  "qps_ratio_vs_flat": res["chosen"]["qps"] / out["flat"]["qps"],
                  "filtered": filtered(ivf, q, allowed, truth_filtered, m_single)}
    logging.info("ivf: %s", res["chosen"])
    del ivf

    if hnsw_n == n:
        hx, hq, htruth = x, q, truth
        h_allowed, h_truth_f, flat_qps = allowed, truth_filtered, out["flat"]["qps"]
    else:  # a smaller HNSW run, compared with flat at the same size
        hx, hq, h_ids = x[:hnsw_n], q, ids[:hnsw_n]
        small = VectorIndex.build(h_ids, hx, kind="flat")
        t_s, hits = timed(lambda: small.search(hq, K))
        htruth, flat_qps = ids_of(hits), m / t_s
        h_allowed = allowed[allowed < hnsw_n]
        h_truth_f = ids_of(small.search(hq, K, allowed_ids=h_allowed))
        del small
    t_build, hnsw = timed(lambda: VectorIndex.build(np.arange(hnsw_n), hx, kind="hnsw", config=cfg))
    res = tune(hnsw, hq, htruth, "ef_search", [8, 16, 32, 64, 128, 256, 512], 0.95)
    out["hnsw"] = {"n": hnsw_n, "build_s": t_build, "M": cfg.hnsw_m, "ef_construction": cfg.ef_construction,
                   **res, "flat_qps_same_n": flat_qps,
                   "qps_ratio_vs_flat": res["chosen"]["qps"] / flat_qps,
                   "filtered": filtered(hnsw, hq, h_allowed, h_truth_f, m_single)}
    logging.info("hnsw: %s", res["chosen"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small-n", type=int, default=100_000)
    p.add_argument("--large-n", type=int, default=1_000_000)
    p.add_argument("--hnsw-n", type=int, default=250_000, help="HNSW collection size (build is the slow part)")
    p.add_argument("--full", action="store_true", help="HNSW at --large-n too")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--single", type=int, default=50, help="queries timed one at a time")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("index.vectors").setLevel(logging.WARNING)
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    hnsw_n = args.large_n if args.full else min(args.hnsw_n, args.large_n)
    with threadpool_limits(args.threads):
        started = time.perf_counter()
        small = flat_vs_sklearn(args.small_n, args.dim, args.queries, rng)
        logging.info("flat vs sklearn: %.1fx", small["speedup"])
        big = large(args.large_n, hnsw_n, args.dim, args.queries, rng, args.single)
    result = {
        "machine": {"threads": args.threads, "python": platform.python_version(), "faiss": faiss.__version__,
                    "processor": platform.processor() or platform.machine()},
        "flat_vs_sklearn": small, "large": big, "total_s": time.perf_counter() - started,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print_table(result)


def print_table(r: dict) -> None:
    s, b = r["flat_vs_sklearn"], r["large"]
    print(f"\nflat vs sklearn brute cosine, {s['n']:,} x {s['d']}, {s['queries']} queries")
    print(f"  faiss flat {s['faiss_flat_qps']:>10,.0f} qps | sklearn {s['sklearn_brute_qps']:>8,.0f} qps | "
          f"{s['speedup']:.1f}x | same top-10 {s['same_top10_fraction']:.3f}")
    print(f"\n{b['n']:,} x {b['d']} (hnsw at {b['hnsw']['n']:,}), {b['queries']} queries, k={K}")
    print(f"  {'kind':6} {'build s':>8} {'param':>14} {'recall@10':>9} {'qps':>9} {'x flat':>7}")
    print(f"  {'flat':6} {b['flat']['build_s']:8.1f} {'':>14} {1.0:9.3f} {b['flat']['qps']:9,.0f} {1.0:7.1f}")
    for kind, knob in (("ivf", "nprobe"), ("hnsw", "ef_search")):
        c = b[kind]["chosen"]
        print(f"  {kind:6} {b[kind]['build_s']:8.1f} {knob + '=' + str(c[knob]):>14} {c['recall@10']:9.3f} "
              f"{c['qps']:9,.0f} {b[kind]['qps_ratio_vs_flat']:7.1f}")
    print("\nfiltered search, 10% selectivity (IDSelectorBitmap inside faiss; HNSW beam widened)")
    print(f"  {'kind':6} {'1q ms unf':>10} {'1q ms filt':>11} {'ratio':>6} {'prepared':>9} {'ratio':>6} "
          f"{'batch ratio':>12} {'recall vs exact':>16}")
    for kind in ("flat", "ivf", "hnsw"):
        f = b[kind]["filtered"]
        rec = f.get("filtered_recall@10_vs_exact", 1.0)
        print(f"  {kind:6} {f['single_query_ms_unfiltered']:10.2f} {f['single_query_ms_filtered']:11.2f} "
              f"{f['single_query_ratio']:6.2f} {f['single_query_ms_filtered_prepared']:9.2f} "
              f"{f['single_query_ratio_prepared']:6.2f} {f['batch_ratio']:12.2f} {rec:16.3f}")
    print("  (1q = one query per call, median; 'prepared' reuses an AllowedIds; batch = 1000 queries per call)")
    print(f"\ntotal {r['total_s']:.0f} s; wrote {RESULTS}")


if __name__ == "__main__":
    main()
