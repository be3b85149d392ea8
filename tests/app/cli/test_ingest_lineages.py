"""Issue 31 item 4: `ingest folders --lineages CSV` (or DIR/lineages.csv) attaches lineages at ingest."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()

LINEAGES = (
    "concept,kingdom,phylum,family,genus\nalpha,Animalia,Chordata,Alphidae,Alphus\nbeta,Animalia,Chordata,Betidae,\n"
)


def ingest(home, root, *extra):
    return runner.invoke(app, ["--home", str(home), "ingest", "folders", str(root), *extra])


def lineage_of(home, name) -> dict:
    result = runner.invoke(app, ["--home", str(home), "taxa", "show", name, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["lineage"]


def crops_in(home) -> int:
    result = runner.invoke(app, ["--home", str(home), "stats", "--json"])
    return json.loads(result.stdout)["crops"] if result.exit_code == 0 else 0


def test_named_lineage_file_gives_the_classes_their_lineages_and_reports_the_missing_one(tmp_path, class_folders):
    csv = tmp_path / "plankton-lineages.csv"
    csv.write_text(LINEAGES, encoding="utf-8")
    home = tmp_path / "home"
    result = ingest(home, class_folders, "--lineages", str(csv), "--json")
    assert result.exit_code == 0, result.output
    attached = json.loads(result.stdout)["lineages"]
    assert attached["path"] == str(csv) and attached["found"] is False
    assert (attached["classes"], attached["matched"], attached["missing"]) == (3, 2, ["gamma"])
    assert lineage_of(home, "alpha")["family"] == "Alphidae" and lineage_of(home, "alpha")["phylum"] == "Chordata"
    assert lineage_of(home, "beta")["family"] == "Betidae"
    assert "family" not in lineage_of(home, "gamma")  # not in the file: no rank invented
    text = ingest(tmp_path / "home2", class_folders, "--lineages", str(csv))
    assert text.exit_code == 0, text.output
    assert "2 of 3 classes named" in text.output and "not in the lineage file (1" in text.output
    assert "gamma" in text.output


def test_a_lineages_csv_at_the_folder_root_is_attached_without_a_second_command(tmp_path, class_folders):
    (class_folders / "lineages.csv").write_text(LINEAGES, encoding="utf-8")
    home = tmp_path / "home"
    result = ingest(home, class_folders)
    assert result.exit_code == 0, result.output
    assert "found at the folder's root" in result.output
    assert lineage_of(home, "alpha")["genus"] == "Alphus"


def test_without_a_lineage_file_nothing_is_attached(tmp_path, class_folders):
    result = ingest(tmp_path / "home", class_folders, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["lineages"] is None
    assert "family" not in lineage_of(tmp_path / "home", "alpha")


@pytest.mark.parametrize(
    "content,words",
    [
        (b"folder,phylum\nalpha,Chordata\n", "concept column"),  # wrong header
        (b"", "concept column"),  # empty
        (b"\xff\xfe\x00bad", "cannot read"),  # not UTF-8
        (b"concept,family\nzeta,Zetidae\n", "none of its"),  # names no class of the folders
    ],
)
def test_a_bad_lineage_file_is_one_line_and_ingests_nothing(tmp_path, class_folders, content, words):
    csv = tmp_path / "bad.csv"
    csv.write_bytes(content)
    home = tmp_path / "home"
    result = ingest(home, class_folders, "--lineages", str(csv))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output and words in lines[0], result.output
    assert crops_in(home) == 0


def test_a_missing_lineage_file_is_one_line_and_ingests_nothing(tmp_path, class_folders):
    home = tmp_path / "home"
    result = ingest(home, class_folders, "--lineages", str(tmp_path / "nowhere.csv"))
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert crops_in(home) == 0
