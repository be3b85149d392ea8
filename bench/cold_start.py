"""Cold start of the query path: ``oceanid --help`` and ``oceanid identify one.png``, ONNX Runtime vs torch.

    python -m bench.cold_start --home /tmp/onnxdemo [--runs 5]

The home (a built demo home) is copied twice to a temporary folder: once as it is (its model
exported: ``oceanid models export`` is run on the copy when it has no ``encoder.onnx``), once
without the export (the torch fallback: what identify ran before). Each figure is the median
wall clock of ``--runs`` fresh processes (the console script, as a user starts it), with the
modules of the training stack each loaded. Writes bench/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import table, write_result

HEAVY = ("torch", "torchvision", "timm", "sklearn", "scipy")
PROBE = (
    "import json, sys\nfrom app.cli import main\nsys.argv = ['oceanid', *sys.argv[1:]]\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    "print('HEAVY' + json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(%r))), file=sys.stderr)"
)


def oceanid() -> list[str]:
    script = Path(sys.executable).with_name("oceanid")
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from app.cli import main; main()"]


def median_wall(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr[-500:]}")
    return statistics.median(times)


def heavy_loaded(args: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,), *args], env=env, capture_output=True, text=True)
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("HEAVY")]
    return json.loads(line[-1][5:]) if line else ["?"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    env = dict(os.environ)
    env.pop("OCEANID_DEBUG", None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx_home, torch_home = Path(tmp) / "onnx", Path(tmp) / "torch"
        shutil.copytree(args.home, onnx_home)
        model = json.loads(
            subprocess.run(
                oceanid() + ["--home", str(onnx_home), "models", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        model_id = next(m["model_id"] for m in model if m["current"])
        if not (onnx_home / "models" / model_id / "encoder.onnx").is_file():
            subprocess.run(oceanid() + ["--home", str(onnx_home), "models", "export"], env=env, check=True)
        shutil.copytree(onnx_home, torch_home)
        for name in ("encoder.json", "encoder.onnx", "encoder.int8.onnx"):
            (torch_home / "models" / model_id / name).unlink(missing_ok=True)
        crop = str(next(iter(sorted((onnx_home / "crops").rglob("*.png")))))
        help_s = median_wall(oceanid() + ["--help"], args.runs, env)
        rows.append(
            {
                "command": "oceanid --help",
                "encoder": "-",
                "median_s": round(help_s, 3),
                "training stack loaded": ", ".join(heavy_loaded(["--help"], env)) or "none",
            }
        )
        for label, home in (("onnxruntime", onnx_home), ("torch (no export)", torch_home)):
            cmd = ["--home", str(home), "identify", crop]
            rows.append(
                {
                    "command": "oceanid identify one.png",
                    "encoder": label,
                    "median_s": round(median_wall(oceanid() + cmd, args.runs, env), 3),
                    "training stack loaded": ", ".join(heavy_loaded(cmd, env)) or "none",
                }
            )
            print(rows[-1], flush=True)
    print(table(rows))
    write_result("cold_start", {"home": str(args.home), "runs": args.runs, "rows": rows})


if __name__ == "__main__":
    main()
