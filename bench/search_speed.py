"""Search speed of index.vectors.vector_index: flat vs numpy vs scikit-learn, and filtered vs unfiltered IVF/HNSW.

Usage (always under the shared CPU lock):
    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.search_speed             # ~5 min, 2 threads
    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.search_speed --large-n 200000 --hnsw-n 50000  # quick

Sections:
1. flat, ``--small-n`` x 128: oceanid vs numpy (GEMM + argpartition; mat-vec for one
   query) vs scikit-learn brute cosine, batched and one query at a time; asserts
   oceanid's top-10 equals the exact numpy top-10.
2. planner crossover, IVF at ``--large-n``: the exact plan and the index plan timed
   on the same allowed sets; the crossover is where the index plan starts to win
   (index/vectors/planner.py ``PlannerConfig.exact_max`` comes from here).
3. filtered vs unfiltered at shipped defaults, IVF at ``--large-n`` and HNSW at
   ``--hnsw-n``: latency ratio and recall@10 against brute force on the allowed set.

Data are clustered random unit vectors (cluster centre + low-rank within-cluster
variation + small isotropic noise), a stand-in for learned embeddings; queries
are fresh draws from the same distribution. Writes bench/figures/search_speed.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads crawl on shared cores

import datetime
import json
import logging
import platform
import statistics
import time

import numpy as np

from bench.common import FIGURES, bench_parser, best_of, command
from index.vectors.planner import PlannerConfig
from index.vectors.vector_index import AllowedIds, IndexConfig, VectorIndex, tune_faiss_blas

K = 10
OUT = FIGURES / "search_speed.json"
SELECTIVITIES = [1, 10, 100, 1000, 0.01, 0.10, 0.50]  # ints: allowed ids; floats: fraction of n
ALWAYS_EXACT = PlannerConfig(exact_max=10**12)
ALWAYS_INDEX = PlannerConfig(exact_max=0, exact_fraction=0.0, lists_factor=0.0, hnsw_exact_fraction=0.0)
REGIONS = [0.01, 0.10, 0.50]  # correlated filters: the fraction furthest along a random direction


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


def median_ms(fn, rows: np.ndarray) -> float:
    """Median latency of ``fn(row[None])`` over rows, in ms (one warm-up call first)."""
    return interleaved_ms({"fn": fn}, rows, rounds=1)["fn"]


def interleaved_ms(fns: dict, rows: np.ndarray, rounds: int = 3) -> dict[str, float]:
    """Median latency (ms) of each ``fn(row[None])``, the functions taking turns on every row.

    Timing one function over all rows and then the next lets drift on shared cores (another
    tenant, frequency, cache state) land on one side; taking turns puts both under the same
    conditions, so their ratio is fair."""
    for fn in fns.values():
        fn(rows[:1])
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for i in range(rows.shape[0]):
            for name, fn in fns.items():
                t = time.perf_counter()
                fn(rows[i : i + 1])
                times[name].append(time.perf_counter() - t)
    return {name: 1000 * statistics.median(v) for name, v in times.items()}


def numpy_topk(x: np.ndarray, q: np.ndarray, k: int = K) -> np.ndarray:
    """The numpy one-liner: GEMM (mat-vec for one query) + argpartition, (m, k) row numbers, unordered."""
    sims = x @ q[0] if q.shape[0] == 1 else q @ x.T
    return np.argpartition(-sims, k, axis=-1)[..., :k]


def exact_topk(x: np.ndarray, q: np.ndarray, k: int = K, block: int = 100) -> np.ndarray:
    """Exact top-k row numbers, (m, k), best first, in query blocks (bounded memory)."""
    out = []
    for i in range(0, q.shape[0], block):
        sims = q[i : i + block] @ x.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(out)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t[t >= 0])) / max(1, (t >= 0).sum()) for f, t in zip(found, truth, strict=True)])
    )


def flat_side_by_side(n: int, d: int, m: int, m_single: int, rng: np.random.Generator) -> dict:
    from sklearn.neighbors import NearestNeighbors

    x, q = split(clustered(n + m, d, 100, rng), m)
    ids = rng.permutation(n).astype(np.int64) * 7 + 3  # catalog keys, not rows
    index = VectorIndex.build(ids, x, kind="flat")
    nn = NearestNeighbors(n_neighbors=K, metric="cosine", algorithm="brute").fit(x)
    t_oc, hits = best_of(lambda: index.search(q, K), 5)  # best-of: the cores are shared
    t_np, _ = best_of(lambda: numpy_topk(x, q), 5)
    t_sk, _ = best_of(lambda: nn.kneighbors(q), 2)
    truth = ids[exact_topk(x, q)]
    same = float(np.mean([set(a) == set(b) for a, b in zip(ids_of(hits), truth, strict=True)]))
    assert same == 1.0, f"flat top-10 differs from exact numpy for {1 - same:.1%} of queries"
    qs = q[:m_single]
    single = interleaved_ms(
        {"oceanid_ms": lambda r: index.search(r, K), "numpy_matvec_ms": lambda r: numpy_topk(x, r)}, qs
    )
    single["sklearn_ms"] = median_ms(lambda r: nn.kneighbors(r), qs[: max(5, m_single // 5)])
    batched = {"oceanid_qps": m / t_oc, "numpy_gemm_qps": m / t_np, "sklearn_brute_qps": m / t_sk}
    return {
        "n": n,
        "d": d,
        "queries": m,
        "single_queries": m_single,
        "batched": batched,
        "single": single,
        "batched_x_numpy": batched["oceanid_qps"] / batched["numpy_gemm_qps"],
        "batched_x_sklearn": batched["oceanid_qps"] / batched["sklearn_brute_qps"],
        "single_vs_numpy": single["oceanid_ms"] / single["numpy_matvec_ms"],
        "same_top10_as_exact": same,
    }


def allowed_of(sel, n: int, rng: np.random.Generator) -> np.ndarray:
    size = sel if isinstance(sel, int) else int(sel * n)
    return np.sort(rng.choice(n, size, replace=False)).astype(np.int64)


def region_of(fraction: float, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ids of the ``fraction`` of rows furthest along a random direction: a filter correlated
    with the embedding (a site, a depth band, a taxon), the hard case for a filtered ANN walk."""
    v = rng.standard_normal(x.shape[1]).astype(np.float32)
    proj = x @ v
    return np.flatnonzero(proj >= np.quantile(proj, 1 - fraction)).astype(np.int64)


def crossover(index: VectorIndex, x: np.ndarray, q: np.ndarray, sizes: list[int], rng: np.random.Generator) -> dict:
    """Single-query latency of the exact and the index plan on the same random allowed sets,
    and the index plan's recall@10 (the planner's ``exact_fraction`` comes from it)."""
    rows = []
    for size in [s for s in sizes if s < index.ntotal]:
        allowed = allowed_of(size, index.ntotal, rng)
        prepared = AllowedIds.of(allowed)
        row = {"allowed": size}
        for name, cfg in (("exact_ms", ALWAYS_EXACT), ("index_ms", ALWAYS_INDEX)):
            index.planner = cfg
            row[name] = median_ms(lambda r, allowed=prepared: index.search(r, K, allowed_ids=allowed), q)
        hits = index.search(q, K, allowed_ids=prepared)
        row["index_recall@10"] = recall_at_k(ids_of(hits), allowed[exact_topk(x[allowed], q)])
        rows.append(row)
        logging.info("crossover %s", row)
    index.planner = PlannerConfig()
    wins = [r["allowed"] for r in rows if r["index_ms"] < r["exact_ms"]]
    return {"rows": rows, "index_plan_first_wins_at": wins[0] if wins else None}


def filtered_table(index: VectorIndex, x: np.ndarray, q: np.ndarray, m_single: int, rng: np.random.Generator) -> dict:
    """Shipped defaults: per selectivity, latency vs unfiltered and recall@10 vs brute force."""
    n = index.ntotal
    qs = q[:m_single]
    unf_ms = median_ms(lambda r: index.search(r, K), qs)
    t_unf, hits = best_of(lambda: index.search(q, K), 2)
    out = {
        "unfiltered": {
            "single_ms": unf_ms,
            "batch_qps": len(q) / t_unf,
            "recall@10": recall_at_k(ids_of(hits), exact_topk(x, q)),
        },
        "rows": [],
    }
    for sel in [*SELECTIVITIES, *(("region", f) for f in REGIONS)]:
        allowed = region_of(sel[1], x, rng) if isinstance(sel, tuple) else allowed_of(sel, n, rng)
        prepared = AllowedIds.of(allowed)
        paired = interleaved_ms(
            {
                "unfiltered": lambda r: index.search(r, K),
                "filtered": lambda r, allowed=prepared: index.search(r, K, allowed_ids=allowed),
            },
            qs,
            rounds=1,
        )
        fil_ms = paired["filtered"]
        t_fil, hits = best_of(lambda allowed=prepared: index.search(q, K, allowed_ids=allowed), 1)
        truth = np.full((len(q), K), -1)
        exact = (
            allowed[exact_topk(x[allowed], q, min(K, allowed.size))]
            if allowed.size > K
            else np.tile(allowed, (len(q), 1))
        )
        truth[:, : exact.shape[1]] = exact
        found = ids_of(hits)
        plan = index.plan(prepared, min(K, allowed.size))
        out["rows"].append(
            {
                "selectivity": sel,
                "allowed": int(allowed.size),
                "plan": plan.mode,
                "probe": plan.probe,
                "single_ms": fil_ms,
                "single_ratio": fil_ms / paired["unfiltered"],
                "batch_qps": len(q) / t_fil,
                "batch_ratio": t_fil / t_unf,
                "recall@10": recall_at_k(found, truth),
                "min_hits": int((found >= 0).sum(axis=1).min()),
            }
        )
        logging.info("%s filtered %s", index.kind, out["rows"][-1])
    return out


def main() -> None:
    p = bench_parser(__file__, __doc__)
    p.add_argument("--small-n", type=int, default=100_000)
    p.add_argument("--large-n", type=int, default=1_000_000)
    p.add_argument("--hnsw-n", type=int, default=200_000, help="HNSW collection size (its build is the slow part)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--single", type=int, default=200, help="queries timed one at a time")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    import faiss
    from threadpoolctl import threadpool_limits

    tune_faiss_blas()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("index.vectors.vector_index").setLevel(logging.WARNING)
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    result: dict = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command("search_speed"),
        "machine": {
            "threads": args.threads,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "faiss": faiss.__version__,
            "processor": platform.processor() or platform.machine(),
        },
        "planner": PlannerConfig().to_dict(),
        "index_config": IndexConfig().to_dict(),
    }
    with threadpool_limits(args.threads):
        result["flat"] = flat_side_by_side(args.small_n, args.dim, args.queries, args.single, rng)
        logging.info("flat: %s", result["flat"])
        n = args.large_n
        x, q = split(clustered(n + args.queries, args.dim, max(100, n // 1000), rng), args.queries)
        ivf = VectorIndex.build(np.arange(n), x, kind="ivf")
        result["ivf"] = {
            "n": n,
            "nlist": int(ivf.faiss_index.nlist),
            "nprobe": int(ivf.faiss_index.nprobe),
            "crossover": crossover(ivf, x, q[:50], [1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000], rng),
            **filtered_table(ivf, x, q, args.single, rng),
        }
        del ivf
        hn = min(args.hnsw_n, n)
        t0 = time.perf_counter()
        hnsw = VectorIndex.build(np.arange(hn), x[:hn], kind="hnsw")
        result["hnsw"] = {
            "n": hn,
            "build_s": time.perf_counter() - t0,
            "crossover": crossover(hnsw, x[:hn], q[:50], [1000, 5000, 10_000, 20_000, 50_000], rng),
            **filtered_table(hnsw, x[:hn], q, args.single, rng),
        }
    result["total_s"] = time.perf_counter() - started
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(markdown(result))


def markdown(r: dict) -> str:
    f, b, s = r["flat"], r["flat"]["batched"], r["flat"]["single"]
    lines = [
        f"`{r['command']}` ({r['date']}, {r['machine']['threads']} threads, faiss {r['machine']['faiss']})",
        "",
        f"Flat, {f['n']:,} x {f['d']} clustered unit vectors, k={K}; "
        f"same top-10 as exact: {f['same_top10_as_exact']:.3f}",
        "",
        "| | oceanid | numpy | scikit-learn | oceanid vs numpy | oceanid vs sklearn |",
        "|---|---|---|---|---|---|",
        f"| batched, {f['queries']} queries (q/s) | {b['oceanid_qps']:,.0f} | "
        f"{b['numpy_gemm_qps']:,.0f} (GEMM+argpartition) | "
        f"{b['sklearn_brute_qps']:,.0f} | {f['batched_x_numpy']:.2f}x | {f['batched_x_sklearn']:.2f}x |",
        f"| one query (median ms) | {s['oceanid_ms']:.2f} | {s['numpy_matvec_ms']:.2f} (mat-vec+argpartition) | "
        f"{s['sklearn_ms']:.1f} | {f['single_vs_numpy']:.2f}x the time | |",
        "",
    ]
    for kind in ("ivf", "hnsw"):
        t = r[kind]
        u = t["unfiltered"]
        extra = f"nlist {t['nlist']}, nprobe {t['nprobe']}" if kind == "ivf" else f"build {t['build_s']:.0f} s"
        lines += [
            f"{kind.upper()} at {t['n']:,} x {f['d']} ({extra}), shipped defaults; "
            f"unfiltered: {u['single_ms']:.2f} ms/query, "
            f"{u['batch_qps']:,.0f} q/s batched, recall@10 {u['recall@10']:.3f}",
            "",
            "| filter | allowed | plan (probe) | ms/query | x unfiltered | batched x unfiltered "
            "| recall@10 vs brute force | min hits |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in t["rows"]:
            sel = row["selectivity"]
            name = (
                f"region {sel[1]:.0%}"
                if isinstance(sel, (list, tuple))
                else f"{sel} ids"
                if isinstance(sel, int)
                else f"random {sel:.0%}"
            )
            probe = f" ({row['probe']})" if row["probe"] else ""
            lines.append(
                f"| {name} | {row['allowed']:,} | {row['plan']}{probe} | {row['single_ms']:.2f} "
                f"| {row['single_ratio']:.2f} | "
                f"{row['batch_ratio']:.2f} | {row['recall@10']:.4f} | {row['min_hits']} |"
            )
        c = t["crossover"]
        lines += [
            "",
            f"{kind.upper()} planner crossover (ms/query, exact plan vs index plan): "
            + ", ".join(
                f"{x['allowed']:,}: {x['exact_ms']:.2f} vs {x['index_ms']:.2f} (recall {x['index_recall@10']:.3f})"
                for x in c["rows"]
            )
            + f"; index plan first wins at {c['index_plan_first_wins_at']}",
            "",
        ]
    lines.append(f"total {r['total_s']:.0f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
