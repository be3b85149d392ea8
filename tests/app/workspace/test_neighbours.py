"""Why this answer: the nearest catalog crops listed with each identification (issue 30 request).
Checked against a brute-force numpy oracle over the catalog's stored vectors. f856aba had no
``neighbours`` in the JSON or the CSV, and no ``--neighbours``."""

from __future__ import annotations

import csv
import json

import numpy as np
from typer.testing import CliRunner

from app.cli import app
from app.workspace import Workspace
from index.catalog.embeddings import load_embeddings
from tests.app.workspace.test_identify import crops

runner = CliRunner()


def test_neighbours_are_the_nearest_catalog_crops_with_their_labels(tiny_home):
    ws = Workspace(tiny_home)
    rows = crops(ws, split="test", limit=4)
    results = ws.identify([tiny_home / p for _, p, _ in rows], neighbours=3)
    ids, stored, labels = load_embeddings(ws.catalog, "tiny", with_labels=True)
    label_of = dict(zip(ids.tolist(), labels.tolist(), strict=False))
    for (_, path, _), r in zip(rows, results, strict=True):
        query = ws.embed_query(tiny_home / path)[0]
        sims = stored @ query
        best = np.argsort(-sims, kind="stable")[:3]
        assert [n.crop_id for n in r.neighbours] == ids[best].tolist()
        np.testing.assert_allclose([n.similarity for n in r.neighbours], sims[best], atol=1e-4)
        assert [n.species for n in r.neighbours] == [label_of[i] for i in ids[best].tolist()]


def test_no_neighbours_reads_no_index(tiny_home):
    ws = Workspace(tiny_home)
    rows = crops(ws, split="test", limit=2)
    results = ws.identify([tiny_home / p for _, p, _ in rows], neighbours=0)
    assert all(r.neighbours == () for r in results)
    assert ws.engine().lazy_index._value is None  # identify alone never opened the FAISS generation


def test_cli_lists_neighbours_in_csv_and_json(tiny_home, tmp_path):
    crop = tiny_home / crops(Workspace(tiny_home), split="test", limit=1)[0][1]
    out = tmp_path / "ids.csv"
    result = runner.invoke(
        app, ["--home", str(tiny_home), "identify", str(crop), "--neighbours", "2", "--json", "--csv", str(out)]
    )
    assert result.exit_code == 0, result.output
    near = json.loads(result.stdout)[0]["neighbours"]
    assert len(near) == 2 and set(near[0]) == {"crop_id", "similarity", "species"}
    (row,) = list(csv.DictReader(out.open()))
    assert row["neighbours"] == "; ".join(f"{n['crop_id']} {n['similarity']:.4f} {n['species']}" for n in near)
    none = runner.invoke(app, ["--home", str(tiny_home), "identify", str(crop), "--neighbours", "0", "--json"])
    assert json.loads(none.stdout)[0]["neighbours"] == []
    default = runner.invoke(app, ["--home", str(tiny_home), "identify", str(crop), "--json"])
    assert len(json.loads(default.stdout)[0]["neighbours"]) == 3
