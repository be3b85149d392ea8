"""``oceanid index build --priors/--prior-tau`` stores the class priors and says so; a bad name is one line."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


def test_index_build_priors(tiny_home, tmp_path):
    home = tmp_path / "h"
    shutil.copytree(tiny_home, home)
    got = runner.invoke(
        app, ["--home", str(home), "index", "build", "--priors", "train", "--prior-tau", "0.5", "--json"]
    )
    assert got.exit_code == 0, got.output
    priors = json.loads(got.output)["priors"]
    assert (priors["source"], priors["tau"]) == ("train", 0.5)
    assert abs(sum(priors["weights"].values()) - 1.0) < 1e-9
    kept = runner.invoke(app, ["--home", str(home), "index", "build"])  # no option: the stored choice stays
    assert kept.exit_code == 0 and "class priors: train x tau 0.5" in kept.output
    bad = runner.invoke(app, ["--home", str(home), "index", "build", "--priors", "nowhere.csv"])
    assert bad.exit_code == 1 and "neither train, balanced nor a file" in bad.output
    assert len(bad.output.strip().splitlines()) <= 2
