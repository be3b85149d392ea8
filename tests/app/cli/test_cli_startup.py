"""`oceanid --help` starts light (issue 32: <= 0.3 s): building the Typer app imports no numpy,
DuckDB, pyarrow, Pillow or torch, and not the workspace; commands import it when they run."""

from __future__ import annotations

import json
import subprocess
import sys

#: what building the command line must not load (app.workspace pulls in all but torch)
HEAVY = ("numpy", "duckdb", "pyarrow", "PIL", "torch", "faiss", "app.workspace")

PROBE = """
import json, sys
{plant}
from app.cli import main
sys.argv = ["oceanid", "--help"]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("PROBE" + json.dumps({{"code": code, "modules": sorted(sys.modules)}}))
"""


def help_probe(plant: str = "") -> tuple[int, set[str], str]:
    """``oceanid --help`` in a fresh interpreter (after ``plant``): (exit code, modules loaded, stdout)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(plant=plant)], capture_output=True, text=True, timeout=120
    )
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("PROBE")]
    assert line, done.stderr[-2000:]
    probe = json.loads(line[-1][5:])
    return probe["code"], set(probe["modules"]), done.stdout


def test_help_imports_no_heavy_library_and_not_the_workspace():
    # would fail: any app/cli module importing app.workspace (or index.imaging, numpy, ...) at its top
    code, modules, out = help_probe()
    assert code == 0
    assert "Identify marine organisms" in out and "identify" in out and "species" in out  # the whole app was built
    assert sorted(m for m in HEAVY if m in modules) == []


def test_the_probe_sees_a_planted_heavy_import():
    """The check above can fail: a command module that imports the workspace at its top is seen."""
    code, modules, _ = help_probe("import app.workspace")
    assert code == 0
    assert {"numpy", "duckdb", "app.workspace"} <= modules
