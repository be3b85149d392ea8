"""Issue 19, item 3, the `split` side: re-splitting a trained home is refused unless --force,
which marks the models trained on the old split stale (stored; shown by `oceanid models`, the
workspace status and `evaluate`). The evaluate side (no test crop trained the model) is
tests/app/workspace/test_pipeline.py's leak check; here both meet."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.workspace import Workspace
from tests.app.cli.test_cli_walk import one_line_error

runner = CliRunner()


@pytest.fixture
def home(tiny_home, tmp_path):
    """A private copy of the tiny trained home (split with seed 0, model "tiny" trained on it)."""
    shutil.copytree(tiny_home, tmp_path / "home")
    return tmp_path / "home"


def splits_of(home) -> dict[int, str | None]:
    with Workspace(home).catalog.read() as con:
        return dict(con.execute("SELECT annotation_id, split FROM annotations").fetchall())


def cli(home, *args):
    return runner.invoke(app, ["--home", str(home), *args])


def models(home) -> dict[str, dict]:
    result = cli(home, "models", "--json")
    assert result.exit_code == 0, result.output
    return {m["model_id"]: m for m in json.loads(result.stdout)}


def test_resplitting_under_a_trained_model_is_refused_and_moves_nothing(home):
    before = splits_of(home)
    line = one_line_error(cli(home, "split", "--seed", "1"))
    assert "tiny" in line and "--force" in line
    assert splits_of(home) == before
    assert models(home)["tiny"]["stale"] is None


def test_the_same_split_again_is_not_refused(home):
    """Splitting with the settings the model was trained on moves no crop: nothing to refuse."""
    before = splits_of(home)
    result = cli(home, "split", "--seed", "0")
    assert result.exit_code == 0, result.output
    assert "0 crops changed split" in result.stdout
    assert splits_of(home) == before and models(home)["tiny"]["stale"] is None


def test_force_resplits_and_marks_the_model_stale_everywhere(home):
    before = splits_of(home)
    result = cli(home, "split", "--seed", "1", "--force", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["stale_models"] == ["tiny"] and summary["changed"] > 0
    after = splits_of(home)
    assert sum(before[i] != after[i] for i in before) == summary["changed"]
    info = models(home)["tiny"]
    assert "split --force" in info["stale"] and info["current"] and info["generation"] == "gen-0001"
    table = cli(home, "models")
    assert table.exit_code == 0 and "stale" in table.stdout
    status = Workspace(home).status()
    assert status.model_stale == info["stale"] and "is stale" in status.message
    # evaluate: the re-split put crops the model trained on into test -> refused, saying why
    line = one_line_error(cli(home, "evaluate", "--report", str(home / "reports" / "r1")))
    assert "test crops were train or val crops of model tiny" in line and "stale" in line


def test_evaluate_says_the_model_is_stale_when_it_can_grade(home):
    """Forced away and split back: no test crop was seen (the leak check passes), but the mark
    stays until the model is retrained, and evaluate reports it (stderr, JSON, eval.json)."""
    assert cli(home, "split", "--seed", "1", "--force").exit_code == 0
    back = cli(home, "split", "--seed", "0")  # the model is already stale: nothing left to protect
    assert back.exit_code == 0, back.output
    result = cli(home, "evaluate", "--report", str(home / "reports" / "r2"), "--json")
    assert result.exit_code == 0, result.output
    assert "warning: model tiny is stale" in result.stderr
    assert "split --force" in json.loads(result.stdout)["model_stale"]
    assert "split --force" in Workspace(home).last_evaluation().model_stale


def test_a_fresh_home_splits_freely(tmp_path):
    """No model yet: a re-split is nobody's business."""
    home = tmp_path / "h"
    assert cli(home, "ingest", "synthetic", "--frames", "12").exit_code == 0
    assert cli(home, "split", "--seed", "0").exit_code == 0
    result = cli(home, "split", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "marked stale" not in result.stdout
