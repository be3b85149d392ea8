"""`oceanid index build --shards N` on the tiny workspace: search (filtered and not), species
add/remove, verify and rollback work on a sharded generation as on one index."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from app.cli import app
from index.vectors.shards import ShardedIndex
from tests.app.workspace.test_decisions import examples_of, held_out

runner = CliRunner()


def answers(ws, queries, where=None):
    return [[(h.annotation_id, round(h.score, 5)) for h in ws.search(q, k=8, where=where)] for q in queries]


def test_index_build_shards_from_the_cli_then_everything_works_the_same(tiny_home, tmp_path):
    from app.workspace import Workspace

    home = tmp_path / "home"
    shutil.copytree(tiny_home, home)
    ws = Workspace(home)
    with ws.catalog.read() as con:
        queries = [
            r[0]
            for r in con.execute(
                "SELECT annotation_id FROM embeddings WHERE model_id = 'tiny' ORDER BY annotation_id LIMIT 6"
            ).fetchall()
        ]
    one = answers(ws, queries)
    one_filtered = answers(ws, queries, where="split='train'")

    base = ["--home", str(home), "index"]
    built = runner.invoke(app, base + ["build", "--shards", "3", "--json"])
    assert built.exit_code == 0, built.output
    manifest = json.loads(built.stdout)
    assert manifest["built"] and manifest["shards"] == 3
    again = runner.invoke(app, base + ["build", "--shards", "3", "--json"])
    assert not json.loads(again.stdout)["built"]  # what is live: nothing written
    text = runner.invoke(app, base + ["verify"])
    assert text.exit_code == 0 and "ok" in text.stdout

    ws = Workspace(home)
    engine = ws.engine("tiny")
    assert isinstance(engine.index, ShardedIndex) and engine.index.n_shards == 3
    assert answers(ws, queries) == one
    assert answers(ws, queries, where="split='train'") == one_filtered

    name = held_out(ws)[0]
    added = ws.species_add(name, examples_of(ws, name))
    engine = ws.engine("tiny")
    assert isinstance(engine.index, ShardedIndex) and engine.index.ntotal == manifest["count"] + added.examples
    assert name in [s for s, _ in ws.identify(examples_of(ws, name)[:1], k=3)[0].top]
    removed = ws.species_remove(name)
    assert removed.removed_vectors == added.examples
    assert answers(ws, queries) == one

    back = runner.invoke(app, base + ["rollback", "--json"])
    assert back.exit_code == 0, back.output
    bad = runner.invoke(app, base + ["build", "--shards", "0"])
    assert bad.exit_code != 0
