"""Scale-out figures (issue 18), each part short enough for one hold of the CPU lock.

    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.scale --part embed   [--n 2500]
    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.scale --part ingest  [--n 1000000]
    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.scale --part search  [--n 1000000 --shards 4]
    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.scale --part memory  [--n 1000000]

- embed: the same fish4knowledge crops embedded by the single-process pipeline
  (``embedder.encoding.encode_paths``, workers 0, prefetch thread) and by the Ray Data
  runner on a local cluster (``embedder.ray_runner.embed_on_ray``, 2 CPUs, 2 actors),
  wall clock from the call to the vectors in memory / in Parquet, at n/5 and n crops.
  Overhead ratio = Ray time / single time (target <= 1.3), for the whole run (each Ray
  call starts its actor pool, ~15 s here) and marginal (the difference between the two
  sizes: steady-state throughput, start-up excluded). ``ray.init`` is reported apart.
- ingest: Parquet vector shards (the runner's schema) into the catalog in one transaction
  (``index.catalog.arrow_io.ingest_vector_shards``), vectors/s.
- search: clustered synthetic unit vectors (1,000 Gaussian centres, sigma 0.3, as
  bench/rebuild_1m.py: ``bench.common.clustered_vectors``), one index vs ``--shards`` shards
  (index/vectors/shards.py), flat and IVF:
  single-query latency (median of 200) and batched throughput (1,000 queries), recall@10
  against exact brute-force search, unfiltered and with a random 10% filter.
- memory: bytes per vector of the written index file for flat / IVF-Flat / IVF-PQ
  (pq_bytes 16, 32, 64), with IVF-PQ's recall@10 against exact search.

Writes bench/results/scale_<part>.json.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import FISH4K, bench_parser, clustered_vectors, command, table, vector_catalog, write_result


def queries(x: np.ndarray, m: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = x[rng.choice(len(x), m, replace=False)] + 0.1 * rng.normal(size=(m, x.shape[1])).astype(np.float32)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, q: np.ndarray, k: int, keep: np.ndarray | None = None) -> list[set[int]]:
    """Brute-force top-k ids (row numbers = ids here), in query blocks."""
    rows = np.arange(len(x)) if keep is None else np.flatnonzero(keep)
    sub = x[rows]
    out = []
    for start in range(0, len(q), 100):
        sims = q[start : start + 100] @ sub.T
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        out += [set(rows[t].tolist()) for t in top]
    return out


def recall(hits, truth: list[set[int]], k: int) -> float:
    return float(np.mean([len({h.id for h in row[:k]} & t) / k for row, t in zip(hits, truth, strict=True)]))


# ---- embed ----------------------------------------------------------------------


def part_embed(args) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray
    import torch

    from embedder.encoding import encode_paths
    from embedder.model import build_model, config_hash, load_model, save_model
    from embedder.ray_runner import RayConfig, embed_on_ray

    paths = sorted(Path(args.data).glob("*/*.png"))[: args.n]
    if not paths:
        sys.exit(f"no crops under {args.data}")
    sizes = [max(64, len(paths) // 5), len(paths)]  # two sizes: the difference has no start-up cost
    torch.manual_seed(0)
    single, on_ray = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        save_model(build_model(args.backbone, image_size=args.image_size).eval(), folder)
        model = load_model(folder)
        encode_paths(model, paths[:128], batch_size=64, workers=0, device="cpu", progress=False)  # warm
        for n in sizes:
            t0 = time.perf_counter()
            solo = encode_paths(model, paths[:n], batch_size=64, workers=0, device="cpu", progress=False)
            single[n] = time.perf_counter() - t0
        crops = pa.table(
            {"annotation_id": np.arange(1, len(paths) + 1, dtype=np.int64), "path": [str(p.resolve()) for p in paths]}
        )
        t0 = time.perf_counter()
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=512 * 1024 * 1024,
            logging_level="ERROR",
            log_to_driver=False,
        )
        t_start = time.perf_counter() - t0
        try:
            config = RayConfig(workers=args.ray_workers, batch_size=64, shard_rows=4096)
            digest = config_hash(folder)
            for n in sizes:  # each call starts its actor pool (model loaded once per actor)
                result = embed_on_ray(crops.slice(0, n), folder, Path(tmp) / f"out-{n}", config, digest)
                on_ray[n] = result.seconds
        finally:
            ray.shutdown()
        got = pa.concat_tables([pq.read_table(p) for p in result.shards]).column("vector").to_pylist()
        diff = float(np.abs(np.asarray(got, np.float32) - solo.vectors).max())
    small, big = sizes
    rows = []
    for name, times in (
        ("single process (workers 0, prefetch 2)", single),
        (f"ray local (2 CPUs, {args.ray_workers} actors)", on_ray),
    ):
        rows.append(
            {
                "engine": name,
                f"wall_s_{small}": times[small],
                f"wall_s_{big}": times[big],
                "crops_s_whole": big / times[big],
                "crops_s_marginal": (big - small) / (times[big] - times[small]),
            }
        )
    ratio_whole = on_ray[big] / single[big]
    ratio_marginal = rows[0]["crops_s_marginal"] / rows[1]["crops_s_marginal"]
    print(table(rows))
    print(
        f"overhead ratio (ray / single time): whole run of {big} crops {ratio_whole:.2f}x, "
        f"marginal (start-up excluded) {ratio_marginal:.2f}x; ray.init {t_start:.1f} s not included; "
        f"max |ray - single| = {diff:.2e}"
    )
    return {
        "backbone": args.backbone,
        "image_size": args.image_size,
        "sizes": sizes,
        "rows": rows,
        "ratio_whole": ratio_whole,
        "ratio_marginal": ratio_marginal,
        "ray_init_s": t_start,
        "max_abs_diff": diff,
    }


# ---- ingest ---------------------------------------------------------------------


def part_ingest(args) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from index.catalog.arrow_io import ingest_vector_shards

    x = clustered_vectors(args.n, args.dim)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        catalog = vector_catalog(home, args.n, args.dim)  # bench set-up, as bench/rebuild_1m.py
        shard_rows = 4096 * 16
        files = []
        for i, start in enumerate(range(0, args.n, shard_rows)):
            part = x[start : start + shard_rows]
            ids = np.arange(start + 1, start + 1 + len(part), dtype=np.int64)
            vec = pa.FixedSizeListArray.from_arrays(pa.array(part.ravel()), args.dim).cast(pa.list_(pa.float32()))
            table_ = pa.table({"annotation_id": ids, "vector": vec, "error": pa.nulls(len(part), pa.string())})
            files.append(home / f"shard-{i:04d}.parquet")
            pq.write_table(table_, files[-1])
        t0 = time.perf_counter()
        report = ingest_vector_shards(catalog, "bench", files)
        seconds = time.perf_counter() - t0
    rows = [
        {
            "vectors": report.stored,
            "dim": args.dim,
            "parquet_shards": len(files),
            "ingest_s": seconds,
            "vectors_s": report.stored / seconds,
        }
    ]
    print(table(rows))
    return {"rows": rows}


# ---- search ---------------------------------------------------------------------


def _latency(index, q: np.ndarray, allowed=None) -> tuple[float, float]:
    """(median ms of single queries, batched queries/s)."""
    single = []
    for i in range(200):
        t0 = time.perf_counter()
        index.search(q[i : i + 1], 10, allowed_ids=allowed)
        single.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    index.search(q, 10, allowed_ids=allowed)
    return statistics.median(single), len(q) / (time.perf_counter() - t0)


def part_search(args) -> dict:
    from index.vectors.filter_cache import AllowedIds
    from index.vectors.shards import ShardedIndex
    from index.vectors.vector_index import VectorIndex, tune_faiss_blas

    tune_faiss_blas()
    x = clustered_vectors(args.n, args.dim)
    ids = np.arange(args.n, dtype=np.int64)
    q = queries(x, 1000)
    rng = np.random.default_rng(2)
    keep = rng.random(args.n) < 0.1
    truth, truth_f = exact_top(x, q, 10), exact_top(x, q, 10, keep)
    allowed = AllowedIds.of(ids[keep])
    rows = []
    for kind in args.kinds.split(","):
        for shards in (1, args.shards):
            t0 = time.perf_counter()
            index = (
                VectorIndex.build(ids, x, kind=kind) if shards == 1 else ShardedIndex.build(ids, x, shards, kind=kind)
            )
            build = time.perf_counter() - t0
            ms, qps = _latency(index, q)
            ms_f, qps_f = _latency(index, q, allowed)
            rows.append(
                {
                    "kind": kind,
                    "shards": shards,
                    "build_s": build,
                    "query_ms": ms,
                    "batch_q_s": qps,
                    "recall10": recall(index.search(q, 10), truth, 10),
                    "filtered10%_ms": ms_f,
                    "filtered_batch_q_s": qps_f,
                    "filtered_recall10": recall(index.search(q, 10, allowed_ids=allowed), truth_f, 10),
                }
            )
            print(table(rows[-1:]), flush=True)
            del index
    print(table(rows))
    return {"n": args.n, "dim": args.dim, "vectors": "clustered synthetic (1000 centres, sigma 0.3)", "rows": rows}


# ---- memory ---------------------------------------------------------------------


def part_memory(args) -> dict:
    from index.vectors.vector_index import IndexConfig, VectorIndex, tune_faiss_blas

    tune_faiss_blas()
    x = clustered_vectors(args.n, args.dim)
    ids = np.arange(args.n, dtype=np.int64)
    q = queries(x, 200)
    truth = exact_top(x, q, 10)
    rows = []
    tmp = Path(tempfile.mkdtemp())
    try:
        for kind, pq_bytes in [("flat", None), ("ivf", None)] + [("ivfpq", b) for b in args.pq_bytes]:
            t0 = time.perf_counter()
            index = VectorIndex.build(ids, x, kind=kind, config=IndexConfig(pq_bytes=pq_bytes))
            build = time.perf_counter() - t0
            path = tmp / f"{kind}-{pq_bytes}.faiss"
            index.save(path)
            size = path.stat().st_size
            rows.append(
                {
                    "kind": kind,
                    "pq_bytes": pq_bytes or "",
                    "build_s": build,
                    "file_mb": size / 2**20,
                    "bytes_per_vector": size / args.n,
                    "recall10": recall(index.search(q, 10), truth, 10),
                }
            )
            print(table(rows[-1:]), flush=True)
            path.unlink()
            del index
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows))
    return {
        "n": args.n,
        "dim": args.dim,
        "vectors": "clustered synthetic (1000 centres, sigma 0.3)",
        "nprobe": IndexConfig().nprobe,
        "rows": rows,
    }


def main() -> None:
    ap = bench_parser(__file__, __doc__)
    ap.add_argument("--part", required=True, choices=("embed", "ingest", "search", "memory"))
    ap.add_argument("--n", type=int, default=None, help="crops (embed, default 1000) or vectors (default 1M)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--kinds", default="flat,ivf", help="search: index kinds")
    ap.add_argument("--pq-bytes", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--data", default=str(FISH4K))
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--ray-workers", type=int, default=2)
    args = ap.parse_args()
    if args.n is None:
        args.n = 2500 if args.part == "embed" else 1_000_000
    run = {"embed": part_embed, "ingest": part_ingest, "search": part_search, "memory": part_memory}[args.part]
    t0 = time.perf_counter()
    out = run(args)
    out["command"] = command("scale")
    out["total_s"] = time.perf_counter() - t0
    write_result(f"scale_{args.part}", out)


if __name__ == "__main__":
    main()
