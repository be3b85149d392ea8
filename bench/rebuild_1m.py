"""Rebuild an index generation of 1M x 128 vectors from the catalog (target: under 30 s).

Stores 1M clustered unit vectors in a fresh catalog, then times what `oceanid
index rebuild` does: load the vectors from DuckDB, build, write, verify, swap.

Run: .venv/bin/python -m bench.rebuild_1m [--n 1000000]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import bench_parser, clustered_vectors, table, vector_catalog, write_result


def main() -> None:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--kinds", default="flat,ivf", help="comma list of flat, ivf, hnsw (hnsw takes minutes)")
    args = parser.parse_args()
    import numpy as np

    from index.catalog.embeddings import load_embeddings, store_embeddings
    from index.vectors.generations import publish
    from index.vectors.vector_index import VectorIndex, tune_faiss_blas

    tune_faiss_blas()
    vectors = clustered_vectors(args.n, args.dim)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        catalog = vector_catalog(home, args.n, args.dim)
        t0 = time.perf_counter()
        store_embeddings(catalog, "bench", np.arange(1, args.n + 1), vectors)
        t_store = time.perf_counter() - t0
        for kind in args.kinds.split(","):
            t0 = time.perf_counter()
            ids, loaded = load_embeddings(catalog, "bench")
            t_load = time.perf_counter() - t0
            index = VectorIndex.build(ids, loaded, kind=kind)
            t_build = time.perf_counter() - t0 - t_load
            publish(home, "bench", index, "h" * 64)
            total = time.perf_counter() - t0
            rows.append(
                {
                    "kind": kind,
                    "vectors": args.n,
                    "load_s": t_load,
                    "build_s": t_build,
                    "write_verify_swap_s": total - t_load - t_build,
                    "rebuild_total_s": total,
                    "target_s": 30,
                }
            )
    print(f"storing {args.n} vectors in the catalog: {t_store:.1f} s")
    print(table(rows))
    write_result("rebuild_1m", {"store_s": t_store, "rows": rows})


if __name__ == "__main__":
    main()
