"""Without `oceanid[train]`, a command that needs the training stack says so in one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import app.cli.train as train_cli
from app.cli import app


@pytest.mark.parametrize("missing, mapped", [("torch", True), ("sklearn.metrics", True), ("notapackage", False)])
def test_a_missing_training_stack_module_is_one_line(tmp_path, monkeypatch, missing, mapped):
    # would fail: mapping every ModuleNotFoundError (a real bug hidden as an install hint)
    def workspace(ctx, *a, **k):
        raise ModuleNotFoundError(f"No module named '{missing}'", name=missing)

    monkeypatch.delenv("OCEANID_DEBUG", raising=False)
    monkeypatch.setattr(train_cli, "workspace", workspace)
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "h"), "embed"])
    if mapped:
        assert result.exit_code == 1
        assert "training stack" in result.output and "oceanid[train]" in result.output
        assert len(result.output.strip().splitlines()) == 1
    else:
        assert isinstance(result.exception, ModuleNotFoundError)
