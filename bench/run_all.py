"""Run every benchmark in turn (make bench). Each writes bench/results/<name>.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["ingest.py", "search_speed.py", "rebuild_1m.py", "embed_throughput.py", "train_losses.py", "identify_latency.py",
           "ood_scorers.py", "few_shot.py", "leave_species_out.py"]


def main() -> int:
    failed = []
    for name in SCRIPTS:
        script = HERE / name
        if not script.exists():
            continue
        print(f"\n=== {name}", flush=True)
        if subprocess.call([sys.executable, str(script), *sys.argv[1:]]) != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
