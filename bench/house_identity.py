"""Are the answers of two code trees byte-identical on one home? (the house steps move code, never answers)

    python -m bench.house_identity --home /tmp/onnxdemo --tree /tmp/base --tree /work/wt2-house2 [--crops 200]

For each tree, the home is copied to one fixed path (answers name their files; each tree gets the same
path, so the JSON can be compared byte for byte) and, with ``PYTHONPATH`` set to the tree, these run:
``identify --json`` of ``--crops`` crops (the console, one process), 120 searches in one process
(``Workspace.search`` of 20 crops as images and 20 as crop ids, without a filter and with
``split in (train, val)`` and ``depth=0..10``: their ``to_dict()``), ``models``, ``index verify``,
``stats`` and ``evaluate --json``, then ``species add`` / ``remove --json`` of 5 crops with ``identify``
after each. Each output's sha256 and exit code are printed per tree; exits 1 when any differs.
Writes nothing outside its temporary folder. ``--skip evaluate`` leaves an output out (a quicker check).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = "import sys; from app.cli import main; sys.argv = ['oceanid', *sys.argv[1:]]; main()"
SEARCHES = """
import json, sys
from app.workspace import Workspace, limit_threads
limit_threads(1)  # as the console does with $OCEANID_THREADS: one thread, the same sums every run
ws = Workspace(sys.argv[1])
queries = json.loads(sys.argv[2])
ids = [h.annotation_id for h in ws.search(queries[0], k=20)]
out = []
for where in (None, "split in ('train', 'val')", "depth=0..10"):
    for q in queries + ids:
        out.append([h.to_dict() for h in ws.search(q, k=10, where=where)])
print(json.dumps(out, default=str))
"""


def run(tree: Path, home: Path, args: list[str]) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "OCEANID_THREADS": "1"}
    cmd = (
        [sys.executable, "-c", SEARCHES, str(home), args[1]]
        if args[0] == "@searches"
        else ([sys.executable, "-c", PROBE, "--home", str(home), *args])
    )
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree)
    return done.returncode, done.stdout + ("\nSTDERR " + done.stderr if done.returncode else "")


def commands(home: Path, n_crops: int) -> list[tuple[str, list[str]]]:
    crops = sorted(str(p) for p in (home / "crops").rglob("*.png"))
    picked = crops[:: max(1, len(crops) // n_crops)][:n_crops]
    queries = crops[:: max(1, len(crops) // 20)][:20]
    out = [("identify", ["identify", *picked, "--json"]), ("120 searches", ["@searches", json.dumps(queries)])]
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
    ap.add_argument("--keep", type=Path, default=None, help="write each output to KEEP/<tree n>/<name>.txt")
    ap.add_argument("--skip", action="append", default=[], help="leave out an output by name (e.g. evaluate)")
    args = ap.parse_args()
    digests: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="house-identity-") as tmp:
        home = Path(tmp) / "home"
        for n_tree, tree in enumerate(args.tree):
            if home.exists():
                shutil.rmtree(home)
            shutil.copytree(args.home, home, symlinks=True)
            for name, cmd in commands(home, args.crops):
                if name in args.skip:
                    continue
                code, out = run(tree, home, cmd)
                if args.keep is not None:
                    folder = args.keep / str(n_tree)
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / f"{name.replace(' ', '_')}.txt").write_text(out)
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
