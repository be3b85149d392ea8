"""One-line messages and notes that can be found again (issue 30 item 13)."""

from __future__ import annotations

import json

from conftest import write_image
from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


def tiny_images(tmp_path):
    """Two class folders, one image in each 10 px high: the first ingest notes them (a re-run adds
    nothing, so it has no notes of its own)."""
    root = tmp_path / "folders"
    for c, name in enumerate(["alpha", "beta"]):
        for f in range(3):
            write_image(root / name / f"{name}_{f}.png", size=(40, 10) if f == 0 else (64, 48), seed=10 * c + f)
    return root


def test_notes_are_shown_on_a_re_run_with_show_notes(tmp_path):
    """f856aba: the first run said "N notes: see them with --show-notes"; the re-run with
    --show-notes added nothing, so it had no notes and showed none."""
    home, root = tmp_path / "home", tiny_images(tmp_path)
    first = runner.invoke(app, ["--home", str(home), "ingest", "folders", str(root)])
    assert first.exit_code == 0, first.output
    assert "2 notes: see them with --show-notes" in first.stdout
    again = runner.invoke(app, ["--home", str(home), "ingest", "folders", str(root), "--show-notes"])
    assert again.exit_code == 0, again.output
    notes = [line for line in again.stdout.splitlines() if line.strip().startswith("note ")]
    assert len(notes) == 2 and all("alpha_0.png" in n or "beta_0.png" in n for n in notes)
    doc = json.loads(runner.invoke(app, ["--home", str(home), "ingest", "folders", str(root), "--json"]).stdout)
    assert doc["notes"] == [] and len(doc["earlier_notes"]) == 2 and doc["notes_file"]


def test_a_missing_file_is_one_line_and_its_record_is_not_a_known_answer(tiny_home, tmp_path):
    """f856aba: a table, a summary and an error line for one missing file; its JSON record
    said "unknown": false as if it had been judged known."""
    missing = tmp_path / "nowhere.png"
    result = runner.invoke(app, ["--home", str(tiny_home), "identify", str(missing)])
    assert result.exit_code == 1
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert "nowhere.png" in result.stderr and result.stderr.count("nowhere.png") == 1
    doc = json.loads(runner.invoke(app, ["--home", str(tiny_home), "identify", str(missing), "--json"]).stdout)
    assert doc[0]["error"] and doc[0]["unknown"] is None and doc[0]["species"] is None


def test_verbose_logging_keeps_the_faiss_loader_quiet():
    """f856aba: `oceanid -v` printed faiss' "Could not load library with AVX2 support ...
    ModuleNotFoundError(...)" lines. A fresh process: -v logging on, then faiss imported."""
    import os
    import subprocess
    import sys

    code = (
        "from app.cli.common import setup_logging; setup_logging(True); import logging; "
        "logging.getLogger('app.check').info('stage line'); import faiss"
    )
    env = {k: v for k, v in os.environ.items() if k != "OCEANID_DEBUG"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "stage line" in out.stderr  # -v still logs our stages
    assert "ModuleNotFoundError" not in out.stderr and "faiss.loader" not in out.stderr


def test_verifying_an_old_generation_does_not_suggest_a_rebuild(tiny_home, tmp_path):
    """f856aba: a damaged old generation got "— rebuild it with `oceanid index rebuild`", which
    writes a new generation and leaves the old one as it was."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(tiny_home, home)
    assert runner.invoke(app, ["--home", str(home), "index", "rebuild"]).exit_code == 0
    with (home / "indexes" / "tiny" / "gen-0001" / "index.faiss").open("ab") as fh:
        fh.write(b"junk")
    old = runner.invoke(app, ["--home", str(home), "index", "verify", "--generation", "gen-0001"])
    assert old.exit_code == 1 and len(old.stderr.strip().splitlines()) == 1
    assert "index rebuild" not in old.stderr and "not the live generation (gen-0002)" in old.stderr
    missing = runner.invoke(app, ["--home", str(home), "index", "verify", "--generation", "gen-0099"])
    assert missing.exit_code == 1 and "index rebuild" not in missing.stderr and "gen-0001, gen-0002" in missing.stderr
    live = runner.invoke(app, ["--home", str(home), "index", "verify"])
    assert live.exit_code == 0 and "gen-0002: ok" in live.stdout


def test_home_after_the_command_is_the_roots(tiny_home):
    """f856aba: `identify --home X` was "No such option: --home" while `serve --home X` worked."""
    crop = next((tiny_home / "crops").rglob("*.png"))
    after = runner.invoke(app, ["identify", str(crop), "--home", str(tiny_home), "--json"])
    assert after.exit_code == 0, after.output
    before = runner.invoke(app, ["--home", str(tiny_home), "identify", str(crop), "--json"])
    assert json.loads(after.stdout)[0]["species"] == json.loads(before.stdout)[0]["species"]
    assert runner.invoke(app, ["identify", str(crop), f"--home={tiny_home}"]).exit_code == 0
    twice = runner.invoke(app, ["--home", "/elsewhere", "identify", str(crop), "--home", str(tiny_home)])
    assert twice.exit_code == 2 and "--home given twice" in twice.stderr
    assert len(twice.stderr.strip().splitlines()) == 1


def test_hoisting_home_leaves_every_other_command_line_alone():
    from hypothesis import given
    from hypothesis import strategies as st

    from app.cli.common import hoist_home

    token = st.sampled_from(
        [
            "identify",
            "x.png",
            "--k",
            "3",
            "-v",
            "--threads",
            "2",
            "--json",
            "--",
            "species",
            "add",
            "--homeward",
            "home",
        ]
    )

    @given(st.lists(token, max_size=8))
    def unchanged(args):
        assert hoist_home(args) == args

    @given(st.lists(token.filter(lambda t: t not in ("--", "--threads")), max_size=5))
    def moved(rest):
        args = ["identify", "a.png", *rest, "--home", "/h"]
        assert hoist_home(args) == ["--home", "/h", "identify", "a.png", *rest]

    unchanged()
    moved()
