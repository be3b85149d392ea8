"""Are the answers of two code trees byte-identical on one home? (the house steps move code, never answers)

    python -m bench.house_identity --home /tmp/onnxdemo --tree /work/main --tree /work/wt2-house2 [--crops 200]

For each tree, the home is copied to one fixed path (answers name their files; each tree gets the same
path, so the JSON can be compared byte for byte) and these run as the console would:
``identify --json`` of the first ``--crops`` test crops, ``search --json`` of 20 crops with no filter and
with two ``--where`` filters, ``models --json``, ``index verify --json``, ``stats --json``, ``evaluate
--json`` (its ``report_dir`` and timings left as they are: same path), then ``species add`` / ``remove
--json`` of one folder of crops. Each output's sha256 and exit code are printed per tree; the script
exits 1 when any differs. Writes nothing outside its temporary folder.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = "import sys; from app.cli import main; sys.argv = ['oceanid', *sys.argv[1:]]; main()"


def run(tree: Path, home: Path, args: list[str]) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "OCEANID_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--home", str(home), *args], env=env, capture_output=True, text=True, cwd=tree
    )
    return done.returncode, done.stdout + ("\nSTDERR " + done.stderr if done.returncode else "")


def commands(home: Path, n_crops: int) -> list[tuple[str, list[str]]]:
    crops = sorted(str(p) for p in (home / "crops").rglob("*.png"))
    picked = crops[:: max(1, len(crops) // n_crops)][:n_crops]
    queries = crops[:: max(1, len(crops) // 20)][:20]
    out = [("identify", ["identify", *picked, "--json"])]
    for n, q in enumerate(queries):
        out.append((f"search {n}", ["search", q, "--json", "--k", "10"]))
        out.append((f"search {n} split", ["search", q, "--json", "--where", "split in ('train', 'val')"]))
        out.append((f"search {n} depth", ["search", q, "--json", "--where", "depth=0..10"]))
    out += [
        ("models", ["models", "--json"]),
        ("index verify", ["index", "verify", "--json"]),
        ("stats", ["stats", "--json"]),
        ("evaluate", ["evaluate", "--json"]),
        ("species add", ["species", "add", "Newfish house", *picked[:5], "--json"]),
        ("identify after add", ["identify", *picked[:20], "--json"]),
        ("species remove", ["species", "remove", "Newfish house", "--json"]),
        ("identify after remove", ["identify", *picked[:20], "--json"]),
    ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--tree", type=Path, action="append", required=True)
    ap.add_argument("--crops", type=int, default=200)
    args = ap.parse_args()
    digests: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="house-identity-") as tmp:
        home = Path(tmp) / "home"
        for tree in args.tree:
            if home.exists():
                shutil.rmtree(home)
            shutil.copytree(args.home, home, symlinks=True)
            for name, cmd in commands(home, args.crops):
                code, out = run(tree, home, cmd)
                digests.setdefault(name, []).append(f"{code}:{hashlib.sha256(out.encode()).hexdigest()[:16]}")
                if code:
                    print(f"{tree} {name}: exit {code}: {out[-300:]}", file=sys.stderr)
    differ = [name for name, d in digests.items() if len(set(d)) > 1]
    for name, d in digests.items():
        print(f"{name:24s} {'  '.join(d)}{'   DIFFERS' if name in differ else ''}")
    print(f"{len(digests)} outputs, {len(differ)} differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
