"""Run the self-contained benchmarks in turn (``make bench``), each as ``python -m bench.<name>`` in a
process of its own, from the repository root. Each writes bench/results/<name>.json (or its figures
file). The others need a built home or a lock-sized part: see each one's ``--help``.

    .venv/bin/python -m bench.run_all                     every script below
    .venv/bin/python -m bench.run_all ingest rebuild_1m   only these
"""

from __future__ import annotations

import subprocess
import sys

from bench.common import REPO, bench_parser

SCRIPTS = [
    "ingest",
    "search_speed",
    "rebuild_1m",
    "embed_throughput",
    "train_losses",
    "identify_latency",
    "ood_scorers",
    "few_shot",
    "leave_species_out",
]


def main() -> int:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"which to run (default: all of {', '.join(SCRIPTS)})")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(SCRIPTS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; valid: {', '.join(SCRIPTS)}")
    failed = []
    for name in args.names or SCRIPTS:
        print(f"\n=== bench.{name}", flush=True)
        if subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=REPO) != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
