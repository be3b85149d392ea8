"""Start-up of the CLI, identify throughput against embed, and two processes side by side.

    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.startup --home /tmp/serve-demo
        [--runs 5] [--crops 1000] [--skip-threads]

Every figure is GNU time (``/usr/bin/time -v``: wall clock and peak memory) of a fresh
``oceanid`` process, the median of ``--runs``:

- ``oceanid --help``;
- cold ``oceanid identify one.png`` (one crop of the home);
- ``oceanid identify FOLDER`` on ``--crops`` crop files of the home, as crops/s of the whole
  process (start-up included), against ``embed``: the same files through
  ``embedder.encoding.encode_paths`` (what ``oceanid embed`` runs), in a process of its own,
  timed from the first file read (model loaded);
- threads: the same folder identified by two processes at once, each with the default
  threads (half the cores) and each with every core (what a process took before
  ``--threads``), against one alone: the slowdown each side sees.

Writes bench/results/startup.json; the figures go into bench/RESULTS.md.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import CLI, bench_parser, cli_env, table, write_result

PYTHON = sys.executable

EMBED = """
import sys, time
from pathlib import Path
from app.workspace import limit_threads
limit_threads()
from app.workspace import Workspace
ws = Workspace(sys.argv[1])
engine = ws.engine()
from embedder.encoding import encode_paths
from embedder.model import load_model
model = load_model(ws.paths.model(engine.model_id))  # what `oceanid embed` runs: the torch model
paths = sorted(Path(sys.argv[2]).iterdir())
t0 = time.perf_counter()
result = encode_paths(model, paths, batch_size=64, device="cpu", progress=False)
print(len(result.ok) / (time.perf_counter() - t0))
"""


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, stdout) of one command under GNU time -v."""
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", out.stderr)
    h, m, s = wall.groups()
    seconds = (int(h) * 3600 if h else 0) + int(m) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1)) / 1024
    return seconds, rss, out.stdout


def median_of(runs: int, cmd: list[str], env: dict[str, str] | None = None) -> dict:
    walls, rss = [], []
    for _ in range(runs):
        w, r, _ = timed(cmd, env)
        walls.append(w)
        rss.append(r)
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "peak_mb": statistics.median(rss),
    }


def import_costs(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Seconds each top-level package took to import in one run (``python -X importtime``);
    absent = never imported (sklearn and scipy.optimize should be: fitting only)."""
    out = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=env)
    costs: dict[str, float] = {}
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (.*)$", line)
        if m:  # each module is imported once: its line's cumulative time, wherever it was nested
            costs[m.group(2).strip()] = int(m.group(1)) / 1e6
    keep = ("torch", "torchvision", "timm", "faiss", "duckdb", "sklearn", "scipy.optimize", "app.cli", "PIL.Image")
    return {k: round(costs.get(k, 0.0), 3) for k in keep}


def side_by_side(cmd: list[str], env: dict[str, str]) -> list[float]:
    """Wall seconds of two copies of ``cmd`` started together."""
    procs = []
    for _ in range(2):
        procs.append(
            (time.perf_counter(), subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env))
        )
    walls = []
    for start, proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"side-by-side run failed: {err.decode()[-2000:]}")
        walls.append(time.perf_counter() - start)
    return walls


def main() -> None:
    ap = bench_parser(__file__, __doc__)
    ap.add_argument("--home", type=Path, required=True, help="a built home (oceanid demo)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--crops", type=int, default=1000)
    ap.add_argument("--skip-threads", action="store_true")
    args = ap.parse_args()

    env = cli_env("OCEANID_THREADS")
    crops = sorted((args.home / "crops").rglob("*.png"))[: args.crops]
    if len(crops) < args.crops:
        raise SystemExit(f"{args.home} holds {len(crops)} crops, fewer than --crops {args.crops}")
    folder = Path(tempfile.mkdtemp(prefix="oceanid-startup-"))
    for n, crop in enumerate(crops):
        shutil.copy(crop, folder / f"{n:05d}.png")
    home = ["--home", str(args.home)]
    timed(CLI + home + ["identify", str(folder / "00000.png")], env)  # page cache warm, scorers stored

    rows, result = [], {"home": str(args.home), "crops": len(crops), "runs": args.runs}
    result["help"] = median_of(args.runs, CLI + ["--help"], env)
    rows.append({"what": "oceanid --help", **result["help"]})
    result["identify_one"] = median_of(args.runs, CLI + home + ["identify", str(folder / "00000.png")], env)
    rows.append({"what": "cold identify one.png", **result["identify_one"]})
    result["identify_folder"] = median_of(args.runs, CLI + home + ["identify", str(folder), "--json"], env)
    rows.append({"what": f"identify {len(crops)} crops", **result["identify_folder"]})
    result["identify_one_imports_s"] = import_costs(CLI + home + ["identify", str(folder / "00000.png")], env)
    embed = [
        float(timed([PYTHON, "-c", EMBED, str(args.home), str(folder)], env)[2].strip().splitlines()[-1])
        for _ in range(args.runs)
    ]
    identify_rate = len(crops) / result["identify_folder"]["median_s"]
    # net of start-up: the extra seconds the folder took over the one crop
    net_rate = (len(crops) - 1) / (result["identify_folder"]["median_s"] - result["identify_one"]["median_s"])
    embed_rate = statistics.median(embed)
    result["throughput"] = {
        "identify_crops_per_s": identify_rate,
        "identify_net_crops_per_s": net_rate,
        "embed_crops_per_s": embed_rate,
        "ratio": identify_rate / embed_rate,
        "ratio_net": net_rate / embed_rate,
    }
    print(table(rows))
    print(table([result["throughput"]]))
    print("imports (s):", result["identify_one_imports_s"])

    if not args.skip_threads:
        cmd = CLI + home + ["identify", str(folder), "--json"]
        alone = result["identify_folder"]["median_s"]
        cores = str(len(os.sched_getaffinity(0)))
        threads = []
        for label, extra in (("default (half the cores)", {}), (f"every core ({cores})", {"OCEANID_THREADS": cores})):
            alone_here = alone if not extra else median_of(max(1, args.runs // 2), cmd, {**env, **extra})["median_s"]
            walls = side_by_side(cmd, {**env, **extra})
            threads.append(
                {
                    "threads": label,
                    "alone_s": alone_here,
                    "side_by_side_s": max(walls),
                    "slowdown": max(walls) / alone_here,
                }
            )
        result["threads"] = threads
        print(table(threads))
    shutil.rmtree(folder, ignore_errors=True)
    print(write_result("startup", result))


if __name__ == "__main__":
    main()
