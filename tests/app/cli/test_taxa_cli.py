"""Issue 17 through the CLI: `taxa show|import`, identify's taxon (table, JSON, CSV) and --decode."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


@pytest.fixture
def home(tiny_home, tmp_path):
    shutil.copytree(tiny_home, tmp_path / "home")
    return tmp_path / "home"


def a_species(home) -> str:
    from app.workspace import Workspace

    return Workspace(home).engine("tiny").prototypes.names[0]


def test_taxa_show_prints_the_lineage_the_catalog_holds(home):
    name = a_species(home)
    result = runner.invoke(app, ["--home", str(home), "taxa", "show", name, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["concept"] == name and shown["rank"] == "species"
    assert shown["lineage"]["species"] == name and shown["lineage"].get("genus")  # the reef's genus
    table = runner.invoke(app, ["--home", str(home), "taxa", "show", name])
    assert table.exit_code == 0 and "genus" in table.stdout


def test_taxa_show_of_a_name_not_in_the_catalog_is_one_line(home):
    result = runner.invoke(app, ["--home", str(home), "taxa", "show", "Nonesuch nowhere"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_taxa_import_corrects_a_lineage(home, tmp_path):
    name = a_species(home)
    lineages = tmp_path / "lineages.csv"
    lineages.write_text(f"concept,order,family,genus\n{name},Imaginales,Fictidae,Fictus\n", encoding="utf-8")
    result = runner.invoke(app, ["--home", str(home), "taxa", "import", str(lineages), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] >= 1
    shown = json.loads(runner.invoke(app, ["--home", str(home), "taxa", "show", name, "--json"]).stdout)
    assert shown["lineage"]["genus"] == "Fictus" and shown["lineage"]["family"] == "Fictidae"
    assert shown["lineage"]["order"] == "Imaginales"


@pytest.mark.parametrize("decode", ["probable", "distance"])
def test_identify_names_a_taxon_with_its_lineage_in_json_and_csv(home, tmp_path, decode):
    crops = sorted((home / "crops").rglob("*.png"))[:4]
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["--home", str(home), "identify", *map(str, crops), "--decode", decode, "--json", "--csv", str(out)]
    )
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)
    for a in answers:
        taxon = a["taxon"]
        assert taxon["decode"] == decode
        if taxon["name"] is not None:  # the named taxon sits in its own lineage at its rank
            assert taxon["lineage"][taxon["rank"]] == taxon["name"]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["taxon"] for r in rows] == [a["taxon"]["name"] or "" for a in answers]


def test_identify_refuses_an_unknown_decoding(home):
    crop = next((home / "crops").rglob("*.png"))
    result = runner.invoke(app, ["--home", str(home), "identify", str(crop), "--decode", "likeliest"])
    assert result.exit_code == 1 and "--decode" in result.output


def test_nearest_relatives_are_ordered_by_taxonomic_distance(tiny_ws):
    """Oracle: index.taxonomy.distance over every other concept with crops, recomputed here."""
    from index.catalog.stats import concepts
    from index.catalog.taxa import tree
    from index.taxonomy import distance

    name = concepts(tiny_ws.catalog)[0]
    lineages = tree(tiny_ws.catalog)
    expected = sorted((distance(lineages[name], lineages[c]), c) for c in concepts(tiny_ws.catalog) if c != name)
    place = tiny_ws.taxa_place(name, top=3)
    assert [(r.distance, r.name) for r in place.relatives] == expected[:3]
    nearest = place.relatives[0]
    assert nearest.shared == lineages[name].at(nearest.shared_rank) == lineages[nearest.name].at(nearest.shared_rank)
