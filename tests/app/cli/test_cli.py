"""The CLI as a user meets it: help with examples, one-line errors, JSON output."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from app.cli import app
from index.errors import NotFound

runner = CliRunner()


def all_commands():
    root = typer.main.get_command(app)
    out = []

    def walk(cmd, path):
        if hasattr(cmd, "commands"):  # a group (typer >= 0.2x vendors click: not a click.Group)
            for name, sub in cmd.commands.items():
                walk(sub, path + [name])
        else:
            out.append(path)

    walk(root, [])
    assert len(out) > 10, out  # the walk must reach the leaves, not stop at the root
    return out


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p))
def test_every_command_has_help_with_example(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_folders_then_stats_json(tmp_path, class_folders):
    home = str(tmp_path / "h")
    result = runner.invoke(app, ["--home", home, "ingest", "folders", str(class_folders), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["crops_added"] == 24
    result = runner.invoke(app, ["--home", home, "stats", "--json", "--plots", str(tmp_path / "plots")])
    survey = json.loads(result.stdout)
    assert survey["crops"] == 24 and survey["per_species"] == {"alpha": 8, "beta": 8, "gamma": 8}
    assert survey["crops_per_species"]["median"] == 8
    assert (tmp_path / "plots" / "crops_per_species.png").stat().st_size > 1000


def test_home_from_environment(tmp_path, class_folders, monkeypatch):
    monkeypatch.setenv("OCEANID_HOME", str(tmp_path / "envhome"))
    assert runner.invoke(app, ["ingest", "folders", str(class_folders), "--json"]).exit_code == 0
    assert (tmp_path / "envhome" / "catalog.duckdb").is_file()


@pytest.mark.parametrize(
    "args,message",
    [
        (["stats"], "no catalog"),
        (["ingest", "folders", "/nonexistent/oceanid"], "no such folder"),
        (["ingest", "coco", "/nonexistent/a.json"], "no such file"),
        (["split", "--train", "0.9"], "sum to 1"),
    ],
)
def test_errors_are_one_line_exit_1(tmp_path, args, message, monkeypatch):
    monkeypatch.delenv("OCEANID_DEBUG", raising=False)
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), *args])
    assert result.exit_code == 1
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert "Traceback" not in result.output


def test_debug_shows_traceback(tmp_path, monkeypatch):
    """With OCEANID_DEBUG the library error itself escapes (CliRunner would record any
    non-zero exit as a SystemExit, so the type is what proves the re-raise)."""
    monkeypatch.setenv("OCEANID_DEBUG", "1")
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "stats"])
    assert result.exit_code == 1 and isinstance(result.exception, NotFound)
    assert "no catalog" in str(result.exception)


def test_without_debug_the_error_is_an_exit_not_the_exception(tmp_path, monkeypatch):
    monkeypatch.delenv("OCEANID_DEBUG", raising=False)
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "stats"])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1


def test_every_group_is_registered_from_its_own_module():
    """One module per group, each with one Typer named ``app``, all registered alike."""
    import app.cli as cli

    names = {name for _, name in cli.GROUPS if name}
    assert names == {"ingest", "models", "index", "detect", "species", "taxa", "discover"}
    assert all(isinstance(module.app, typer.Typer) for module, _ in cli.GROUPS)
    verbs = {p[0] for p in all_commands()}
    assert verbs == {
        "ingest",
        "stats",
        "split",
        "train",
        "embed",
        "index",
        "identify",
        "search",
        "species",
        "evaluate",
        "demo",
        "app",
        "serve",
        "taxa",
        "detect",
        "models",
        "discover",
        "count",
    }


def test_split_cli(tmp_path, class_folders):
    home = str(tmp_path / "h")
    runner.invoke(app, ["--home", home, "ingest", "folders", str(class_folders), "--group-pattern", r"fish_(\d+)_"])
    result = runner.invoke(app, ["--home", home, "split", "--holdout", "gamma", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["held_out"] == ["gamma"] and summary["counts"]["gamma"] == {"holdout": 8}


def test_split_and_stats_say_how_many_duplicates_were_merged(tmp_path, class_folders):
    """Two byte-identical frames in different groups are merged into one group; the CLI says so."""
    import shutil

    src = class_folders / "alpha" / "fish_00_0.png"
    shutil.copy(src, class_folders / "alpha" / "fish_09_0.png")  # same bytes, another group key
    home = str(tmp_path / "h")
    runner.invoke(app, ["--home", home, "ingest", "folders", str(class_folders), "--group-pattern", r"fish_(\d+)_"])
    split = runner.invoke(app, ["--home", home, "split"])
    assert split.exit_code == 0, split.output
    assert "duplicates merged: 1 groups (1 repeated frames" in split.output
    stats = runner.invoke(app, ["--home", home, "stats"])
    assert "duplicates: 1 repeated frames; 1 groups merged" in stats.output


def test_the_cli_starts_without_the_heavy_libraries():
    """`oceanid stats` and `--help` must not pay for torch, faiss, scikit-learn or matplotlib
    at start-up: they are imported inside the steps that need them."""
    import subprocess
    import sys

    code = (
        "import sys, app.cli; heavy = [m for m in ('torch', 'faiss', 'sklearn', 'matplotlib', 'scipy') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
