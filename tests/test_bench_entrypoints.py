"""Every bench script runs as ``python -m bench.<name>`` from the repository root, and its ``--help``
answers without starting work: torch is made unimportable for these runs, so a script that imports it
(or the embedder) before parsing its arguments fails here. Nothing in bench/ edits ``sys.path`` or
imports the tests."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
LIBRARY = {"__init__", "common", "two_space_rules", "label_studio_harness"}  # bench modules that are not scripts
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in LIBRARY)
NO_TORCH = 'raise ImportError("a bench script imported torch before parsing its arguments")\n'


@pytest.fixture(scope="module")
def helps(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """``python -m bench.<name> --help`` of every script, four at a time, with a torch that cannot load."""
    blocker = tmp_path_factory.mktemp("no-torch")
    (blocker / "torch").mkdir()
    (blocker / "torch" / "__init__.py").write_text(NO_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))}

    def run(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", f"bench.{name}", "--help"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(SCRIPTS, pool.map(run, SCRIPTS), strict=True))


def test_every_script_is_found():
    assert {"search_speed", "run_all", "cascade", "leave_species_out"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_runs_as_a_module(helps, name):
    out = helps[name]
    assert out.returncode == 0, out.stderr[-2000:]
    usage = out.stdout.splitlines()[0] if out.stdout else ""
    assert usage.startswith("usage:") and name in usage, out.stdout[:300]


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda p: p.stem)
def test_no_path_edits_nor_test_imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", None) == "sys":
            pytest.fail(f"{path.name}:{node.lineno} touches sys.path; import bench.<module> instead")
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        for name in names:
            assert name.split(".")[0] not in ("tests", "conftest"), f"{path.name}:{node.lineno} imports {name}"


def test_run_all_runs_scripts_that_exist():
    tree = ast.parse((BENCH / "run_all.py").read_text())
    listed = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "SCRIPTS"
    )
    assert listed and set(listed) <= set(SCRIPTS)
