"""Identify, search, species add/remove and evaluate on a tiny trained workspace."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import app
from app.workspace import Workspace
from index.errors import EmptyIndex, FilterError, IndexMismatch, InvalidInput, NotFound

runner = CliRunner()


def crops(ws, split=None, species=None, limit=5):
    sql, params = "SELECT annotation_id, crop_path, concept FROM annotations WHERE TRUE", []
    if split:
        sql, params = sql + " AND split = ?", params + [split]
    if species:
        sql, params = sql + " AND concept = ?", params + [species]
    with ws.catalog.read() as con:
        return con.execute(sql + " ORDER BY annotation_id LIMIT ?", params + [limit]).fetchall()


def test_identify_known_crop_names_a_trained_species(tiny_home):
    ws = Workspace(tiny_home)
    rows = crops(ws, split="train", limit=3)
    results = ws.identify([tiny_home / p for _, p, _ in rows], k=3)
    engine = ws.engine()
    for r in results:
        assert r.error is None and len(r.top) == 3
        assert r.top[0][0] in engine.prototypes.names
        assert set(r.ood) == {"prototype", "knn", "mahalanobis", "msp", "relative_mahalanobis"}
        assert r.unknown == (r.ood[r.scorer]["score"] < r.ood[r.scorer]["threshold"])
        assert r.species == ("unknown" if r.unknown else r.top[0][0])
        assert [s for _, s in r.top] == sorted((s for _, s in r.top), reverse=True)


def test_identify_bad_image_is_reported_not_raised(tiny_home, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    good = tiny_home / crops(Workspace(tiny_home), limit=1)[0][1]
    results = Workspace(tiny_home).identify([bad, good, b""])
    assert "not an image" in results[0].error and results[1].error is None
    assert "empty" in results[2].error


def test_search_matches_brute_force_and_filter_is_exact(tiny_home):
    ws = Workspace(tiny_home)
    engine = ws.engine()
    from index.embeddings import load_embeddings

    ids, vectors = load_embeddings(ws.catalog, "tiny")
    query_id = int(ids[0])
    hits = ws.search(query_id, k=5)
    sims = vectors @ vectors[0]
    order = [int(ids[i]) for i in np.argsort(-sims) if ids[i] != query_id][:5]
    assert [h.annotation_id for h in hits] == order
    assert all(h.crop.is_file() for h in hits)
    with ws.catalog.read() as con:
        allowed = {r[0] for r in con.execute("SELECT annotation_id FROM crop_meta WHERE depth_m <= 30").fetchall()}
    filtered = ws.search(query_id, k=5, where="depth=..30")
    exact = [int(ids[i]) for i in np.argsort(-sims) if ids[i] in allowed and ids[i] != query_id][:5]
    assert [h.annotation_id for h in filtered] == exact
    assert all(h.depth_m <= 30 for h in filtered)
    assert engine.index.ntotal == len(ids)


def test_search_edge_cases(tiny_home):
    ws = Workspace(tiny_home)
    assert ws.search(1, k=5, where="depth > 100000") == []
    everything = ws.search(1, k=10_000)
    assert len(everything) == ws.engine().index.ntotal - 1
    with pytest.raises(FilterError, match="allowed columns: species"):
        ws.search(1, where="depth >> 3")
    with pytest.raises(FilterError):
        ws.search(1, where="species='x' OR 1=1 --")
    with pytest.raises(NotFound):
        ws.search(10**9)


def test_unknown_model_and_empty_workspace(tmp_path, tiny_home):
    with pytest.raises(NotFound, match="unknown model id 'nope'"):
        Workspace(tiny_home).identify([b"x"], model="nope")
    empty = Workspace(tmp_path / "empty")
    empty.catalog.ensure_schema()
    with pytest.raises(EmptyIndex, match="no model"):
        empty.identify([b"x"])


def test_model_without_index(tiny_ws):
    import shutil

    shutil.rmtree(tiny_ws.home / "indexes")
    with pytest.raises(EmptyIndex, match="no index generation"):
        tiny_ws.identify([b"x"])


def test_index_from_another_model_is_refused(tiny_ws):
    from index.embeddings import register_model

    register_model(tiny_ws.catalog, "tiny", "0" * 64, 32, "tiny")  # the catalog now knows another config
    with pytest.raises(IndexMismatch):
        tiny_ws.search(1)


def test_altered_index_file_is_detected(tiny_ws):
    gen = tiny_ws.index_verify()["generation"]
    path = tiny_ws.home / "indexes" / "tiny" / gen / "index.faiss"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexMismatch, match="sha256"):
        tiny_ws.index_verify()


def test_add_species_then_identify_and_remove(tiny_ws):
    engine = tiny_ws.engine()
    held = sorted({c for _, _, c in crops(tiny_ws, split="holdout", limit=1000)})
    name = held[0]
    rows = crops(tiny_ws, split="holdout", species=name, limit=40)
    examples = [tiny_ws.home / p for _, p, _ in rows[:5]]
    before = engine.index.ntotal
    result = tiny_ws.species_add(name, examples, genus="Testus")
    assert result["examples"] == 5
    engine = tiny_ws.engine()
    assert name in engine.prototypes.names and engine.origins[name] == "added"
    assert engine.index.ntotal == before + 5
    # an example itself is now closest to the new species' prototype family
    top = tiny_ws.identify(examples[:1], k=len(engine.prototypes.names))[0].top
    assert name in [s for s, _ in top[:3]]
    with pytest.raises(InvalidInput, match="already exists"):
        tiny_ws.species_add(name, examples)
    with pytest.raises(InvalidInput, match="learned in training"):
        tiny_ws.species_remove(engine.prototypes.names[0] if engine.prototypes.names[0] != name else engine.prototypes.names[1])
    removed = tiny_ws.species_remove(name)
    assert removed["removed_vectors"] == 5
    assert name not in tiny_ws.engine().prototypes.names and tiny_ws.engine().index.ntotal == before


def test_add_species_needs_one_readable_example(tiny_ws, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(InvalidInput, match="could be read"):
        tiny_ws.species_add("Newus speciesus", [bad])


def test_evaluate_json_shape(tiny_ws):
    result = runner.invoke(app, ["--home", str(tiny_ws.home), "evaluate", "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert {"top1", "top5", "f1_macro", "f1_weighted", "per_class"} <= set(s["classification"])
    assert set(s["ood"]) == {"prototype", "knn", "mahalanobis", "msp", "relative_mahalanobis"}
    assert all({"auroc", "fpr95", "aupr", "threshold"} <= set(v) for v in s["ood"].values())
    assert {"recall_at_1", "recall_at_5", "recall_at_10", "map_at_r"} <= set(s["retrieval"])
    assert {"shots_1", "shots_5"} <= set(s["few_shot"])
    assert all({"recall", "known_accuracy_change"} <= set(v) for v in s["few_shot"].values())
    assert 0 <= s["classification"]["top1"] <= s["classification"]["top5"] <= 1
    report = tiny_ws.home / "reports" / "latest"
    for name in ("summary.md", "eval.json", "confusion.png", "roc.png", "embedding_map.png"):
        assert (report / name).stat().st_size > 100
    assert tiny_ws.last_evaluation()["model"] == "tiny"


def test_cli_identify_csv_search_json(tiny_home, tmp_path):
    ws = Workspace(tiny_home)
    folder = tiny_home / "crops"
    out = tmp_path / "ids.csv"
    result = runner.invoke(app, ["--home", str(tiny_home), "identify", str(folder / "0000"), "--csv", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("image,species,score,unknown") and len(lines) > 10
    result = runner.invoke(app, ["--home", str(tiny_home), "search", "--crop", "1", "--k", "3", "--json",
                                 "--where", "split in (train, val)"])
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and all(h["split"] in ("train", "val") for h in hits)
    result = runner.invoke(app, ["--home", str(tiny_home), "search", "--crop", "1", "--where", "colour=red"])
    assert result.exit_code == 1 and "allowed columns" in result.stderr
    assert ws.index_verify()["ok"]


def test_browse_status_species_and_map(tiny_home, tmp_path):
    ws = Workspace(tiny_home)
    status = ws.status()
    assert status.has_index and status.model_id == "tiny" and status.crops > 0 and not status.message
    infos = {i.name: i for i in ws.species_summary()}
    assert {i.status for i in infos.values()} == {"known", "holdout"}
    known = next(i for i in infos.values() if i.status == "known")
    assert known.examples and known.nearest and len(known.confusable) == 3
    assert all(p.is_file() for p in known.nearest)
    points = ws.embedding_map(max_points=40)
    assert len(points) == 40 and {"x", "y", "species", "status", "split", "crop"} <= set(points[0])
    assert "demo" in Workspace(tmp_path / "none").status().message
