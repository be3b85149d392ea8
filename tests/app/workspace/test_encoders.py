"""The query encoder: onnxruntime by default and torch-free; torch only as the fallback."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from app.workspace import Workspace

#: what the query path must never load (the training stack)
HEAVY = ("torch", "torchvision", "timm", "sklearn", "open_clip", "pytorch_metric_learning")
#: not installed by the serving install, and slow to import (pandas: ~0.3 s, via pyarrow's to_numpy)
NOT_SERVING = ("scipy", "pandas", "matplotlib", "streamlit")

PROBE = """
import json, sys
from app.cli import main
sys.argv = ["oceanid", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("PROBE" + json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def run_cli(args: list[str]) -> tuple[int, set[str], str]:
    """``oceanid ARGS`` in a fresh interpreter: (exit code, top-level modules loaded, stdout)."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, timeout=120)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("PROBE")]
    assert line, done.stderr[-2000:]
    probe = json.loads(line[-1][5:])
    return probe["code"], set(probe["modules"]), done.stdout


@pytest.fixture(scope="module")
def crop(tiny_home):
    return next(iter(sorted((tiny_home / "crops").rglob("*.png"))))


@pytest.mark.parametrize("command", [["identify", "{crop}", "--json"], ["search", "{crop}", "--json"]])
def test_query_commands_never_import_the_training_stack(tiny_home, crop, command):
    # would fail: any module of the identify chain importing torch at its top (embedder.model for
    # config_hash, embedder.device to pick the device), or sklearn for the OOD scorers
    code, modules, out = run_cli(["--home", str(tiny_home), *[a.format(crop=crop) for a in command]])
    assert code == 0, out[-2000:]
    assert "onnxruntime" in modules
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert not modules & set(NOT_SERVING), sorted(modules & set(NOT_SERVING))


def test_species_add_never_imports_the_training_stack(tiny_ws, tmp_path):
    crops = sorted((tiny_ws.home / "crops").rglob("*.png"))[:3]
    code, modules, out = run_cli(["--home", str(tiny_ws.home), "species", "add", "Novus probus", *map(str, crops)])
    assert code == 0, out[-2000:]
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_engine_runs_onnxruntime_and_answers_like_torch(tiny_ws, caplog):
    # would fail: an ORT path that embedded with other preprocessing or another output
    crops = sorted((tiny_ws.home / "crops").rglob("*.png"))[:12]
    onnx = tiny_ws.engine()
    assert onnx.model.runtime == "onnxruntime"
    got = tiny_ws.identify(crops)
    (tiny_ws.paths.model("tiny") / "encoder.json").unlink()  # a model from before exports
    ws = Workspace(tiny_ws.home)
    with caplog.at_level(logging.WARNING):
        engine = ws.engine()
        assert engine.model.runtime == "torch"
    said = [r.getMessage() for r in caplog.records if "queries run on torch" in r.getMessage()]
    assert len(said) == 1 and "oceanid models export" in said[0]
    want = ws.identify(crops)
    assert [r.species for r in got] == [r.species for r in want]
    np.testing.assert_allclose([r.score for r in got], [r.score for r in want], atol=1e-4)
    a, b = onnx.embed([]), engine.embed([])
    assert a.shape == b.shape and a.shape[0] == 0 and a.shape[1] > 0


def test_models_export_cli_restores_the_onnx_path(tiny_ws):
    folder = tiny_ws.paths.model("tiny")
    for name in ("encoder.json", "encoder.onnx"):
        (folder / name).unlink()
    code, _, out = run_cli(["--home", str(tiny_ws.home), "models", "export", "--json"])
    assert code == 0, out
    result = json.loads(out[: out.index("PROBE")])
    assert result["passed"] and result["check_crops"] > 0 and result["max_cosine_gap"] < 1e-4
    assert Workspace(tiny_ws.home).engine().model.runtime == "onnxruntime"
