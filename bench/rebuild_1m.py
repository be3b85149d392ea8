"""Rebuild an index generation of 1M x 128 vectors from the catalog (target: under 30 s).

Stores 1M clustered unit vectors in a fresh catalog, then times what `oceanid
index rebuild` does: load the vectors from DuckDB, build, write, verify, swap.

Run: .venv/bin/python bench/rebuild_1m.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import table, write_result  # noqa: E402


def main() -> None:
    import numpy as np

    from index.catalog.catalog import Catalog
    from index.catalog.embeddings import load_embeddings, register_model, store_embeddings
    from index.vectors.generations import publish
    from index.vectors.vector_index import VectorIndex, tune_faiss_blas

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--kinds", default="flat,ivf", help="comma list of flat, ivf, hnsw (hnsw takes minutes)")
    args = parser.parse_args()
    tune_faiss_blas()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(1000, args.dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 1000, args.n)] + 0.3 * rng.normal(size=(args.n, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        catalog = Catalog(home / "catalog.duckdb")
        catalog.ensure_schema()
        with catalog.write() as con:
            con.execute("INSERT INTO images (source, source_id, sha256, path, width, height) "
                        "VALUES ('bench', '1', 'x', 'x', 1, 1)")
            con.execute(f"INSERT INTO annotations (image_id, concept, x, y, w, h, group_key, split) "
                        f"SELECT 1, 'c' || (i % 100), 0, 0, 1, 1, 'g', 'train' FROM range({args.n}) t(i)")
        register_model(catalog, "bench", "h" * 64, args.dim, "bench")
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
            rows.append({"kind": kind, "vectors": args.n, "load_s": t_load, "build_s": t_build,
                         "write_verify_swap_s": total - t_load - t_build, "rebuild_total_s": total,
                         "target_s": 30})
    print(f"storing {args.n} vectors in the catalog: {t_store:.1f} s")
    print(table(rows))
    write_result("rebuild_1m", {"store_s": t_store, "rows": rows})


if __name__ == "__main__":
    main()
