"""Each process's compute threads: --threads, $OCEANID_THREADS, else half the cores."""

from __future__ import annotations

import os

import pytest
import torch

from app.workspace import limit_threads
from app.workspace.threads import POOL_VARS, THREADS_ENV, default_threads
from index.errors import InvalidInput


@pytest.fixture
def restore(monkeypatch):
    """Put the process's threads and pool variables back after the test."""
    before = torch.get_num_threads()
    for var in (*POOL_VARS, THREADS_ENV):
        monkeypatch.setenv(var, os.environ.get(var, "")) if var in os.environ else monkeypatch.delenv(
            var, raising=False
        )
    yield
    limit_threads(before)


def test_the_default_is_half_the_usable_cores(restore, monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert default_threads() == max(1, len(os.sched_getaffinity(0)) // 2)
    assert limit_threads() == default_threads() == torch.get_num_threads()


def test_a_given_number_wins_and_reaches_torch_and_child_processes(restore, monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "2")
    assert limit_threads(3) == 3 and torch.get_num_threads() == 3
    assert all(os.environ[var] == "3" for var in (*POOL_VARS, THREADS_ENV))  # what uvicorn workers inherit


def test_the_environment_is_read_when_no_number_is_given(restore, monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "1")
    assert limit_threads() == 1 and torch.get_num_threads() == 1


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_a_bad_environment_value_is_one_error(restore, monkeypatch, value):
    monkeypatch.setenv(THREADS_ENV, value)
    with pytest.raises(InvalidInput, match="OCEANID_THREADS|at least 1"):
        limit_threads()


def test_the_cli_option_sets_the_threads(restore, tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    result = CliRunner().invoke(app, ["--threads", "1", "--home", str(tmp_path / "h"), "stats"])
    assert torch.get_num_threads() == 1, result.output
    bad = CliRunner().invoke(app, ["--threads", "0", "stats"])
    assert bad.exit_code == 2 and "--threads" in bad.output


def test_the_demo_takes_every_core_unless_told(restore, monkeypatch, tmp_path):
    """`oceanid demo` runs alone: every usable core, unless --threads or $OCEANID_THREADS say otherwise."""
    from typer.testing import CliRunner

    import app.workspace.demo as demo_step  # the command imports run_demo from app.workspace when it runs
    from app.cli import app

    cores = len(os.sched_getaffinity(0))

    def stop(*args, **kwargs):
        raise KeyboardInterrupt  # the demo itself is not run: only the threads it starts with matter

    monkeypatch.setattr(demo_step, "run_demo", stop)
    monkeypatch.delenv(THREADS_ENV, raising=False)
    limit_threads(1)
    monkeypatch.delenv(THREADS_ENV, raising=False)
    CliRunner().invoke(app, ["--home", str(tmp_path / "h"), "demo"])
    assert torch.get_num_threads() == cores
    monkeypatch.setenv(THREADS_ENV, "1")
    CliRunner().invoke(app, ["--home", str(tmp_path / "h2"), "demo"])
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(
    "command, every_core",
    [
        (("train",), True),
        (("embed",), True),
        (("evaluate",), True),
        (("demo",), True),
        (("index", "build"), True),
        (("index", "rebuild"), True),
        (("detect", "train"), True),
        (("detect", "evaluate"), True),
        (("serve",), False),
        (("app",), False),
        (("identify",), False),
        (("search",), False),
        (("index", "verify"), False),
        (("detect", "frame.png"), False),
        (("species", "add"), False),
    ],
)
def test_batch_jobs_take_every_core_and_the_rest_half(command, every_core):
    from app.workspace import threads_for, usable_cores

    assert threads_for(command) == (usable_cores() if every_core else default_threads())


@pytest.mark.parametrize(
    "args, every_core",
    [
        (["index", "build"], True),
        (["--verbose", "train", "--epochs", "1"], True),
        (["stats"], False),
        (["index", "verify"], False),
    ],
)
def test_the_cli_reads_the_verb_of_a_group(restore, monkeypatch, tmp_path, args, every_core):
    # would fail: a policy keyed on the group alone (`index` -> every core for `index verify` too)
    from typer.testing import CliRunner

    from app.cli import app
    from app.workspace import usable_cores

    monkeypatch.delenv(THREADS_ENV, raising=False)
    home = ["--home", str(tmp_path / "h")]
    CliRunner().invoke(app, [*home, *args] if args[0] != "--verbose" else [args[0], *home, *args[1:]])
    assert int(os.environ[THREADS_ENV]) == (usable_cores() if every_core else default_threads())
