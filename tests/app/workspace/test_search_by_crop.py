"""Issue 19 items 15 and 16: `search --crop N` for a crop that does not exist says so, and a
search by crop id reads the stored vector without loading the encoder."""

from __future__ import annotations

import shutil

from typer.testing import CliRunner

from app.cli import app
from index.catalog.lookup import crop_vector

runner = CliRunner()


def test_search_for_a_crop_that_does_not_exist_says_so(tiny_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(tiny_home, home)
    result = runner.invoke(app, ["--home", str(home), "search", "--crop", "999999999"])
    assert result.exit_code == 1
    assert "no crop has id 999999999" in result.output and "oceanid embed" not in result.output


def test_search_by_crop_id_does_not_load_the_encoder(tiny_ws):
    engine = tiny_ws.engine("tiny")
    assert not engine.lazy_model.loaded  # loading the engine does not read the weights either
    with tiny_ws.catalog.read() as con:
        crop = con.execute("SELECT annotation_id FROM embeddings WHERE model_id = 'tiny' LIMIT 1").fetchone()[0]
    hits = tiny_ws.search(int(crop), k=3)
    assert len(hits) == 3 and crop not in [h.annotation_id for h in hits]
    assert not engine.lazy_model.loaded
    # the same answer as searching with the stored vector the encoder made for that crop
    expected = engine.index.search(crop_vector(tiny_ws.catalog, "tiny", int(crop)), 4)[0]
    assert [h.annotation_id for h in hits] == [h.id for h in expected if h.id != crop][:3]


def test_index_build_honours_kind_and_says_what_it_pruned(tiny_home, tmp_path):
    """Item 17: `index build --kind flat` on a live index of another kind said "up to date";
    `build` pruned old generations without a word."""
    import json

    home = tmp_path / "home"
    shutil.copytree(tiny_home, home)
    base = ["--home", str(home), "index"]
    hnsw = runner.invoke(app, base + ["build", "--kind", "hnsw", "--json"])
    assert hnsw.exit_code == 0, hnsw.output
    assert json.loads(hnsw.stdout)["built"] and json.loads(hnsw.stdout)["kind"] == "hnsw"
    same = json.loads(runner.invoke(app, base + ["build", "--kind", "hnsw", "--json"]).stdout)
    assert not same["built"]  # asked for what is live: nothing written
    flat = json.loads(runner.invoke(app, base + ["build", "--kind", "flat", "--json"]).stdout)
    assert flat["built"] and flat["kind"] == "flat"
    for _ in range(3):
        last = runner.invoke(app, base + ["rebuild"])
    assert last.exit_code == 0 and "pruned old generation(s) gen-" in last.stdout


def test_rollback_to_a_generation_older_than_the_stored_vectors_warns(tiny_ws):
    """Item 17: rollback moved to an out-of-date generation without a word."""
    from tests.app.workspace.test_decisions import examples_of, held_out

    name = held_out(tiny_ws)[0]
    tiny_ws.species_add(name, examples_of(tiny_ws, name))  # new vectors, a new generation
    back = tiny_ws.index_rollback("tiny")
    assert back.warning and "index build" in back.warning
    tiny_ws.index_build("tiny", rebuild=False)  # the stored vectors again
    tiny_ws.species_remove(name)
    assert tiny_ws.index_rollback("tiny").warning  # the generation before still holds the added vectors


def test_evaluate_refuses_a_model_whose_training_crops_reached_the_test_split(tiny_ws):
    """Item 3: `split --seed 1` after training put training crops into test, and `evaluate`
    graded on them (top-1 0.954 instead of 0.939)."""
    import json

    import pytest

    from app.workspace import SplitConfig
    from index.errors import InvalidInput

    seen = json.loads((tiny_ws.paths.model("tiny") / "seen_crops.json").read_text())["crops"]
    assert len(seen) > 0
    tiny_ws.evaluate()  # the split it was trained on: fine
    with pytest.raises(InvalidInput, match="model\\(s\\) tiny were trained on the current split"):
        tiny_ws.split(SplitConfig(seed=1))  # refused (tests/app/cli/test_resplit.py) unless forced
    tiny_ws.split(SplitConfig(seed=1), force=True)
    with pytest.raises(InvalidInput, match="test crops were train or val crops of model tiny"):
        tiny_ws.evaluate()
    tiny_ws.split(SplitConfig(seed=0))  # back to the split it was trained on
    assert tiny_ws.evaluate().model_stale  # graded, and still said to be stale
