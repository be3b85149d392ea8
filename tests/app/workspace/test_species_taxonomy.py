"""Issue 19, item 2: taxonomy given to `species add` fills what is missing and never erases what
the catalog knows (unless --correct); `species remove` undoes the add's taxonomy exactly.

Each test names the old behaviour it catches: the README's ``--family`` example stored no genus;
on a held-out species with crops it dropped the genus of all of them and remove did not restore
it; a family-rank label ("Scaridae") became a species whose parent was itself.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import app
from index.catalog.taxa import taxa_table
from tests.app.explorer.test_explorer_apptest import crops_of

runner = CliRunner()


def examples(ws, n: int = 3):
    """``n`` crops of one held-out species (with its name): crops the model never trained on."""
    held = crops_of(ws.home, "holdout")
    name = held[0][1]
    return name, [c for _, s, c in held if s == name][:n]


def genus_family_of_crops(ws, species: str) -> set[tuple]:
    with ws.catalog.read() as con:
        return set(con.execute("SELECT genus, family FROM crop_meta WHERE species = ?", [species]).fetchall())


def cli(ws, *args):
    return runner.invoke(app, ["--home", str(ws.home), *args])


def test_the_readme_example_keeps_the_genus_of_a_binomial(tiny_ws):
    """`species add "Poralia rufescens" examples/ --family Ulmaridae` stored no genus."""
    _, files = examples(tiny_ws)
    result = cli(tiny_ws, "species", "add", "Poralia rufescens", *map(str, files), "--family", "Ulmaridae")
    assert result.exit_code == 0, result.output
    lineage = tiny_ws.taxa_show("Poralia rufescens")
    assert lineage.at("genus") == "Poralia" and lineage.at("family") == "Ulmaridae"
    assert genus_family_of_crops(tiny_ws, "Poralia rufescens") == {("Poralia", "Ulmaridae")}
    hits = cli(tiny_ws, "search", "--crop", "1", "--k", "50", "--where", "genus=Poralia", "--json")
    assert hits.exit_code == 0, hits.output
    assert '"Poralia rufescens"' in hits.stdout


def test_adding_a_held_out_species_with_another_family_erases_nothing_and_remove_restores_it(tiny_ws):
    """On a species that already has crops, --family removed the genus from all of them, and
    `species remove` did not put it back."""
    name, files = examples(tiny_ws)
    before_taxa = taxa_table(tiny_ws.catalog)
    before = genus_family_of_crops(tiny_ws, name)
    ((genus, family),) = before
    assert genus and family  # the synthetic reef knows both
    result = cli(tiny_ws, "species", "add", name, *map(str, files), "--family", "Wrongidae")
    assert result.exit_code == 0, result.output
    assert f"kept family {family!r} of" in result.stdout  # the conflict is said, not applied
    assert genus_family_of_crops(tiny_ws, name) == before
    assert cli(tiny_ws, "species", "remove", name).exit_code == 0
    assert taxa_table(tiny_ws.catalog) == before_taxa


def test_correct_replaces_what_the_catalog_knows_and_remove_undoes_it(tiny_ws):
    name, files = examples(tiny_ws)
    before_taxa = taxa_table(tiny_ws.catalog)
    result = cli(tiny_ws, "species", "add", name, *map(str, files), "--genus", "Rectus", "--correct")
    assert result.exit_code == 0, result.output
    assert tiny_ws.taxa_show(name).at("genus") == "Rectus"
    assert cli(tiny_ws, "species", "remove", name).exit_code == 0
    assert taxa_table(tiny_ws.catalog) == before_taxa


@pytest.mark.parametrize(
    "label, rank, given", [("Scaridae", "family", ["--family", "Scaridae"]), ("Chromis", None, [])]
)
def test_a_label_above_species_rank_is_never_its_own_parent(tiny_ws, label, rank, given):
    """ "Scaridae" (a family folder: its family is named Scaridae) became a species whose parent
    was itself; its family was lost. A name with no rank given stays at an unknown rank, never
    a species."""
    _, files = examples(tiny_ws)
    result = cli(tiny_ws, "species", "add", label, *map(str, files), *given)
    assert result.exit_code == 0, result.output
    rows = {r[0]: r for r in taxa_table(tiny_ws.catalog)}
    assert rows[label][2] != label
    assert all(r[0] != r[2] for r in rows.values())
    lineage = tiny_ws.taxa_show(label)
    assert lineage.rank != "species"
    if rank:
        assert lineage.rank == rank and lineage.at(rank) == label
