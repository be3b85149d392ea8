"""Species names as typed (issue 30 item 11). On f856aba: "umbrellia lucida" was added beside the
trained "Umbrellia lucida", a typo in `species remove` listed every species, and crops labelled
one species were taken as examples of another without a word."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.workspace.species_names import check_new_name, key, not_found
from index.errors import InvalidInput, NotFound
from tests.app.workspace.test_identify import crops

runner = CliRunner()


def test_key_ignores_case_and_spacing():
    assert key("  umbrellia   Lucida ") == key("Umbrellia lucida")
    assert key("Umbrellia lucida") != key("Umbrellia fulva")


def test_a_name_that_differs_only_in_case_is_refused_naming_the_existing_one():
    with pytest.raises(InvalidInput, match="'Umbrellia lucida' already"):
        check_new_name("umbrellia lucida", ["Umbrellia lucida", "Pentastra rubra"])
    check_new_name("Umbrellia lucida", ["Umbrellia lucida"])  # the exact name is another check's business
    check_new_name("Umbrellia fulva", ["Umbrellia lucida"])


def test_a_typo_gets_the_near_name_not_the_whole_list():
    known = ["Poralia rufescens", "Pentastra rubra", "Umbrellia lucida", "Cancrella rufa"]
    err = not_found("Poralia rufescen", known)
    assert isinstance(err, NotFound) and "'Poralia rufescens'" in err.hint
    assert "Pentastra" not in str(err) + err.hint and "Umbrellia" not in str(err) + err.hint
    far = not_found("Zzzz", known)
    assert "Poralia" not in str(far) + far.hint and "4 known" in str(far)


def test_adding_a_trained_species_in_lower_case_is_refused_and_changes_nothing(tiny_ws):
    engine = tiny_ws.engine()
    trained = engine.prototypes.names[0]
    examples = [tiny_ws.home / p for _, p, _ in crops(tiny_ws, split="holdout", limit=3)]
    result = runner.invoke(app, ["--home", str(tiny_ws.home), "species", "add", trained.lower(), *map(str, examples)])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and repr(trained) in result.stderr
    assert tiny_ws.engine().prototypes.names == engine.prototypes.names


def test_removing_a_typo_suggests_the_added_species(tiny_ws):
    held = sorted({c for _, _, c in crops(tiny_ws, split="holdout", limit=1000)})[0]
    rows = crops(tiny_ws, split="holdout", species=held, limit=5)
    tiny_ws.species_add(held, [tiny_ws.home / p for _, p, _ in rows])
    result = runner.invoke(app, ["--home", str(tiny_ws.home), "species", "remove", held[:-1]])
    assert result.exit_code == 1 and f"did you mean {held!r}" in result.stderr
    others = [n for n in tiny_ws.engine().prototypes.names if n != held]
    assert sum(n in result.stderr for n in others) <= 2 < len(others)  # near names at most, not every species
    assert held in tiny_ws.engine().prototypes.names


def test_examples_that_are_crops_of_another_species_give_a_warning(tiny_ws):
    trained = tiny_ws.engine().prototypes.names[0]
    rows = crops(tiny_ws, split="train", species=trained, limit=3)
    result = tiny_ws.species_add("Novus exemplaris", [tiny_ws.home / p for _, p, _ in rows])
    assert len(result.warnings) == 1 and repr(trained) in result.warnings[0]
    assert result.warnings[0].startswith("3 of 3 examples")
    held = sorted({c for _, _, c in crops(tiny_ws, split="holdout", limit=1000)})[0]
    own = crops(tiny_ws, split="holdout", species=held, limit=3)
    assert tiny_ws.species_add(held, [tiny_ws.home / p for _, p, _ in own]).warnings == ()  # its own crops
