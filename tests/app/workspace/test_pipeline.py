"""Index builds (a no-op when nothing changed), verification, pruning and rollback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import app
from index.errors import IndexMismatch, NotFound

runner = CliRunner()


def state(ws) -> tuple:
    """What a build may write: the catalog file, the generations, CURRENT."""
    catalog = ws.catalog.path
    wal = catalog.with_name(catalog.name + ".wal")
    indexes = ws.home / "indexes" / "tiny"
    return (
        catalog.stat().st_mtime_ns,
        catalog.stat().st_size,
        wal.exists(),
        sorted(p.name for p in indexes.iterdir()),
        (indexes / "CURRENT").read_text(),
    )


def test_index_build_does_nothing_when_nothing_changed(tiny_ws):
    before = state(tiny_ws)
    result = tiny_ws.index_build(rebuild=False)
    assert not result.built and not result.prototypes_refit and result.generation == "gen-0001"
    assert state(tiny_ws) == before  # no catalog write, no new generation


def test_index_build_builds_when_the_vectors_change_even_at_the_same_count(tiny_ws):
    """Staleness is decided by content: one vector changed, the count and config unchanged."""
    import numpy as np

    from index.catalog.embeddings import load_embeddings, store_embeddings

    ids, vectors = load_embeddings(tiny_ws.catalog, "tiny")
    changed = vectors[:1].copy()
    changed[0] = changed[0][::-1]
    store_embeddings(tiny_ws.catalog, "tiny", ids[:1], changed)
    result = tiny_ws.index_build(rebuild=False)
    assert result.built and result.generation == "gen-0002" and result.manifest.count == len(ids)
    hit = tiny_ws.engine().index.search(changed, 1)[0][0]
    assert hit.id == ids[0] and hit.score == pytest.approx(1.0, abs=1e-5)
    again = tiny_ws.index_build(rebuild=False)
    assert not again.built and again.generation == "gen-0002"
    assert np.isclose(np.linalg.norm(changed), 1.0)


def test_refit_prototypes_after_a_new_split_without_a_new_index(tiny_ws):
    """New train crops change the prototypes: they are rewritten, the index stays."""
    with tiny_ws.catalog.write() as con:
        con.execute("UPDATE annotations SET split = 'train' WHERE split = 'val'")
    version = tiny_ws.catalog.prototypes_version("tiny")
    result = tiny_ws.index_build(rebuild=False)
    assert result.prototypes_refit and not result.built
    assert tiny_ws.catalog.prototypes_version("tiny") == version + 1


def test_rebuild_always_writes_and_old_generations_are_pruned(tiny_ws):
    names = [tiny_ws.index_build(rebuild=True).generation for _ in range(4)]
    assert names == ["gen-0002", "gen-0003", "gen-0004", "gen-0005"]
    kept = sorted(p.name for p in (tiny_ws.home / "indexes" / "tiny").glob("gen-*"))
    assert kept == ["gen-0003", "gen-0004", "gen-0005"]  # the newest 3 after each publish


def test_prune_and_rollback_from_the_cli(tiny_ws):
    home = ["--home", str(tiny_ws.home)]
    tiny_ws.index_build(rebuild=True)
    tiny_ws.index_build(rebuild=True)
    result = runner.invoke(app, [*home, "index", "rollback", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["current"] == "gen-0002"
    assert tiny_ws.engine().generation == "gen-0002"
    result = runner.invoke(app, [*home, "index", "prune", "--keep", "1", "--json"])
    assert result.exit_code == 0, result.output
    pruned = json.loads(result.stdout)
    assert pruned["current"] == "gen-0002" and pruned["removed"] == ["gen-0001"]
    kept = sorted(p.name for p in (tiny_ws.home / "indexes" / "tiny").glob("gen-*"))
    assert kept == ["gen-0002", "gen-0003"]  # keep 1 = the newest, and never the live one
    result = runner.invoke(app, [*home, "index", "rollback"])
    assert result.exit_code == 1 and "no generation before gen-0002" in result.stderr


def test_rollback_verifies_the_previous_generation(tiny_ws):
    tiny_ws.index_build(rebuild=True)
    path = tiny_ws.home / "indexes" / "tiny" / "gen-0001" / "index.faiss"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexMismatch, match="sha256"):
        tiny_ws.index_rollback()
    assert tiny_ws.index_verify().generation == "gen-0002"  # CURRENT untouched


def test_rollback_with_one_generation_is_refused(tiny_ws):
    with pytest.raises(NotFound, match="no generation before"):
        tiny_ws.index_rollback()


def test_altered_index_file_is_detected(tiny_ws):
    gen = tiny_ws.index_verify().generation
    path = tiny_ws.home / "indexes" / "tiny" / gen / "index.faiss"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexMismatch, match="sha256"):
        tiny_ws.index_verify()
