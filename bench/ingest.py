"""Ingest throughput (crops per second) for the synthetic reef and fish4knowledge.

Run: .venv/bin/python -m bench.ingest
Each source is ingested into a fresh temporary home; the synthetic figure
includes drawing the reef, and is also given without it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import FISH4K, bench_parser, table, write_result


def main() -> None:
    bench_parser(__file__, __doc__).parse_args()
    from app.workspace import Workspace
    from index.sources.synthetic import generate_reef

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate_reef(Path(tmp) / "reef", species=16, holdout=4, frames=400, seed=0)
        draw = time.perf_counter() - t0
        ws = Workspace(Path(tmp) / "h1")
        t0 = time.perf_counter()
        report = ws.ingest_synthetic(16, 4, 400, 0)
        total = time.perf_counter() - t0
        rows.append(
            {
                "source": "synthetic (400 frames)",
                "crops": report.crops_added,
                "seconds": total,
                "crops_per_s": report.crops_added / total,
                "crops_per_s_excl_drawing": report.crops_added / max(total - draw, 1e-9),
            }
        )
        if FISH4K.is_dir():
            ws = Workspace(Path(tmp) / "h2")
            t0 = time.perf_counter()
            report = ws.ingest_folders(FISH4K, group_pattern=r"fish_(\d+)_")
            total = time.perf_counter() - t0
            rows.append(
                {
                    "source": "fish4knowledge folders",
                    "crops": report.crops_added,
                    "seconds": total,
                    "crops_per_s": report.crops_added / total,
                    "crops_per_s_excl_drawing": None,
                }
            )
            t0 = time.perf_counter()
            again = ws.ingest_folders(FISH4K, group_pattern=r"fish_(\d+)_")
            total = time.perf_counter() - t0
            rows.append(
                {
                    "source": "fish4knowledge re-ingest (no-op)",
                    "crops": again.crops_added,
                    "seconds": total,
                    "crops_per_s": 3416 / total,
                    "crops_per_s_excl_drawing": None,
                }
            )
    print(table(rows))
    write_result("ingest", {"rows": rows})


if __name__ == "__main__":
    main()
