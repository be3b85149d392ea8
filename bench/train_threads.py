"""A lone ``oceanid train`` epoch with every core vs half of them, and two trainings side by side.

    python -m bench.train_threads --home /tmp/demo8 [--runs 2] [--epochs 1]

The home (a built demo home) is copied to a temporary folder; each figure is the wall clock of a
fresh ``oceanid --threads N train --epochs E --model bench-tN`` process (start-up, the epoch(s),
validation and the model's ONNX export included), the median of ``--runs``:

- alone, with every core (the batch-job default since issue 32) and with half of them (the
  default before);
- two trainings started together, each with every core and each with half: the wall clock each
  side sees.

Writes bench/results/train_threads.json.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path

from bench.common import CLI, bench_parser, cli_env, table, write_result
from bench.startup import side_by_side, timed


def main() -> None:
    ap = bench_parser(__file__, __doc__)
    ap.add_argument("--home", type=Path, required=True, help="a built home (oceanid demo)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()

    env = cli_env("OCEANID_THREADS")
    tmp = Path(tempfile.mkdtemp(prefix="oceanid-train-threads-"))
    home = tmp / "home"
    shutil.copytree(args.home, home)
    cores = os.cpu_count() or 1
    settings = {"every core": cores, "half the cores": max(1, cores // 2)}

    def train(threads: int, tag: str) -> list[str]:
        return [
            *CLI,
            "--home",
            str(home),
            "--threads",
            str(threads),
            "train",
            "--epochs",
            str(args.epochs),
            "--model",
            f"bench-{tag}",
        ]

    rows, result = [], {"home": str(args.home), "cores": cores, "epochs": args.epochs, "runs": args.runs}
    for name, threads in settings.items():
        walls = [timed(train(threads, f"t{threads}-{i}"), env)[0] for i in range(args.runs)]
        result[f"alone {name}"] = walls
        rows.append({"what": f"alone, {name} ({threads})", "median_s": statistics.median(walls), "runs": walls})
    for name, threads in settings.items():
        walls = side_by_side(train(threads, f"pair{threads}"), env)
        result[f"two at once {name}"] = walls
        rows.append({"what": f"two at once, {name} ({threads}) each", "median_s": max(walls), "runs": walls})
    shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows))
    write_result("train_threads", result)


if __name__ == "__main__":
    main()
