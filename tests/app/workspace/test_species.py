"""Adding a species from a few examples and removing it; a failure half-way changes nothing."""

from __future__ import annotations

import hashlib

import pytest

from app.workspace.species import STEPS, add_species
from index.errors import InvalidInput
from tests.app.workspace.test_identify import crops


def held_out_examples(ws, n=5):
    held = sorted({c for _, _, c in crops(ws, split="holdout", limit=1000)})
    name = held[0]
    rows = crops(ws, split="holdout", species=name, limit=40)
    return name, [ws.home / p for _, p, _ in rows[:n]]


def test_add_species_then_identify_and_remove(tiny_ws):
    engine = tiny_ws.engine()
    name, examples = held_out_examples(tiny_ws)
    before = engine.index.ntotal
    result = tiny_ws.species_add(name, examples, genus="Testus")
    assert (result.species, result.action, result.examples, result.skipped) == (name, "added", 5, ())
    engine = tiny_ws.engine()
    assert name in engine.prototypes.names and engine.origins[name] == "added"
    assert engine.index.ntotal == before + 5
    assert result.generation == engine.generation
    # an example itself is now closest to the new species' prototype family
    top = tiny_ws.identify(examples[:1], k=len(engine.prototypes.names))[0].top
    assert name in [s for s, _ in top[:3]]
    with pytest.raises(InvalidInput, match="already exists"):
        tiny_ws.species_add(name, examples)
    with pytest.raises(InvalidInput, match="learned in training"):
        tiny_ws.species_remove(
            engine.prototypes.names[0] if engine.prototypes.names[0] != name else engine.prototypes.names[1]
        )
    removed = tiny_ws.species_remove(name)
    assert (removed.action, removed.removed_vectors) == ("removed", 5)
    assert name not in tiny_ws.engine().prototypes.names and tiny_ws.engine().index.ntotal == before
    assert removed.to_dict()["removed_vectors"] == 5


def test_add_species_needs_one_readable_example(tiny_ws, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(InvalidInput, match="could be read"):
        tiny_ws.species_add("Newus speciesus", [bad])


def snapshot(ws) -> dict:
    """Everything an add may touch: catalog rows, meta, the live generation, files on disk."""
    with ws.catalog.read() as con:
        tables = {
            t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("images", "annotations", "taxa", "embeddings", "prototypes")
        }
        tables["meta"] = con.execute("SELECT * FROM meta ORDER BY key").fetchall()
    files = {
        str(p.relative_to(ws.home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ws.home.rglob("*"))
        if p.is_file() and p.suffix != ".duckdb" and ".wal" not in p.name
    }
    return {"tables": tables, "files": files}


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("new_name", [False, True], ids=["held-out-name", "new-name-and-taxa"])
@pytest.mark.parametrize("failing", STEPS)
def test_a_failure_at_any_step_leaves_the_previous_state(tiny_ws, failing, new_name):
    name, examples = held_out_examples(tiny_ws)
    name = "Novus testus" if new_name else name
    before = snapshot(tiny_ws)
    engine = tiny_ws.engine()
    count = engine.index.ntotal

    def step(current: str) -> None:
        if current == failing:
            raise Boom(current)

    with pytest.raises(Boom):
        add_species(
            engine, tiny_ws.catalog, tiny_ws.paths, name, examples, genus="Novus", family="Novidae", on_step=step
        )
    after = snapshot(tiny_ws)
    assert after["tables"] == before["tables"]
    assert after["files"] == before["files"]
    assert engine.index.ntotal == count
    assert name not in tiny_ws.engine().prototypes.names


def test_a_failure_inside_the_store_transaction_writes_nothing(tiny_ws, monkeypatch):
    """Vectors, prototype and version go in one transaction: a failure after the vectors
    were inserted (while bumping the version) leaves no vector behind."""
    from index.catalog.catalog import Catalog

    name, examples = held_out_examples(tiny_ws)
    before = snapshot(tiny_ws)

    def boom(self, model_id, con=None):
        # the vectors are in, inside the open transaction
        assert con.execute("SELECT count(*) FROM embeddings").fetchone()[0] > len(before["tables"]["embeddings"])
        raise Boom("version")

    monkeypatch.setattr(Catalog, "bump_prototypes_version", boom)
    with pytest.raises(Boom):
        tiny_ws.species_add(name, examples)
    monkeypatch.undo()
    assert snapshot(tiny_ws) == before


def test_an_added_species_survives_a_new_model(tiny_ws):
    """Issue 10.4: after `species add`, a second model (train -> embed -> index build, no
    re-adding) still names the added species: its support crops are re-embedded and its
    prototype rebuilt from them."""
    from embedder.train_config import TrainConfig

    name, examples = held_out_examples(tiny_ws, n=5)
    tiny_ws.species_add(name, examples)
    siblings = [tiny_ws.home / p for _, p, _ in crops(tiny_ws, split="holdout", species=name, limit=40)[5:15]]
    assert len(siblings) >= 5
    import numpy as np

    tiny_ws.train(
        TrainConfig(
            backbone="tiny", weights="none", epochs=2, image_size=32, dim=32, batch_p=4, batch_k=4, workers=0, seed=1
        ),
        model="second",
    )
    tiny_ws.embed("second", progress=False)
    tiny_ws.index_build("second")
    engine = tiny_ws.engine("second")
    assert name in engine.prototypes.names and engine.origins[name] == "added"
    # its prototype is the mean of its support crops embedded by the SECOND model
    from index.catalog.embeddings import load_embeddings

    _, support, labels = load_embeddings(tiny_ws.catalog, "second", ("support",), with_labels=True)
    mean = support[labels == name].mean(0)
    assert np.allclose(engine.prototypes.rows_of(name)[0], mean / np.linalg.norm(mean), atol=1e-5)
    # and the new model names it: its examples top-1, its unseen siblings in the top 3 for most
    own = [r.top[0][0] for r in tiny_ws.identify(examples, k=3, model="second")]
    assert sum(n == name for n in own) >= 4, own
    near = [[s for s, _ in r.top] for r in tiny_ws.identify(siblings, k=3, model="second")]
    assert sum(name in t for t in near) >= len(siblings) // 2, near


def test_two_sessions_one_adding_a_species_one_identifying(tiny_ws):
    """Issue 10.5: the explorer shares one Workspace across sessions. While one session adds a
    species, another keeps identifying: its engine's index is never changed under it (same
    vector count, same answers), nothing raises, and its next engine sees the new species."""
    import threading

    name, examples = held_out_examples(tiny_ws)
    query = examples[0]
    reader_engine = tiny_ws.engine()
    before_n = reader_engine.index.ntotal
    before = tiny_ws.identify([query])[0].top
    errors, answers, counts = [], [], []
    done = threading.Event()

    def read():
        from app.workspace.identify import identify

        while not done.is_set():
            try:
                answers.append(identify(reader_engine, [query])[0].top)
                counts.append(reader_engine.index.ntotal)
                tiny_ws.identify([query])  # the shared Workspace path, reloading as it goes
            except Exception as exc:  # noqa: BLE001 - any error in the reader fails the test
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        tiny_ws.species_add(name, examples)
    finally:
        done.set()
        reader.join(timeout=60)
    assert not errors, errors
    assert answers and all(a == before for a in answers)
    assert set(counts) == {before_n}
    fresh = tiny_ws.engine()
    assert name in fresh.prototypes.names and fresh.index.ntotal == before_n + len(examples)


def test_an_added_species_is_scored_as_few_shot_by_the_engine(tiny_ws):
    """The engine tells the knn scorer which species came from `species add`, so their crops
    are judged on the trained species' scale (index.scoring.ood.KnnScorer few_shot; its effect is
    measured by bench/few_shot.py); trained species are not few-shot."""
    name, examples = held_out_examples(tiny_ws)
    assert tiny_ws.engine().scorers["knn"].small == [] and tiny_ws.engine().added_scorer is None
    tiny_ws.species_add(name, examples)
    engine = tiny_ws.engine()
    assert engine.scorers["knn"].small == []  # the known species' scorer is untouched by the add
    knn = engine.added_scorer
    assert [(c, len(own)) for c, own, *_ in knn.small] == [(name, len(examples))]
