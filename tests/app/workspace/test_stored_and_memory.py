"""Issue 25, request paths without a round trip: ``POST /identify`` by crop id answers from the catalog's
stored vectors (nothing decoded or embedded), and ``species add`` embeds its examples' support crops from
memory (the stored crop files are never read back before encoding), with the same vectors as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from index.catalog.lookup import crop_files, crop_vectors
from index.errors import BadImage, NotFound
from index.imaging import open_image
from tests.app.workspace.test_species import held_out_examples


def _embedded_ids(ws, n: int) -> list[int]:
    with ws.catalog.read() as con:
        rows = con.execute("SELECT annotation_id FROM embeddings WHERE model_id = 'tiny' ORDER BY 1").fetchall()
    return [int(r[0]) for r in rows[:: max(1, len(rows) // n)][:n]]


def _no_pixels(monkeypatch):
    """Decoding an image or running the encoder raises from now on."""

    def refuse(*_a, **_k):
        raise AssertionError("decoded or embedded an image")

    monkeypatch.setattr("index.imaging._decode", refuse)
    monkeypatch.setattr("app.workspace.engine.Engine.embed", refuse)
    monkeypatch.setattr("app.workspace.encoders.OrtEncoder.embed", refuse)


def test_identify_by_crop_id_answers_from_the_stored_vectors(tiny_ws, monkeypatch):
    # would fail on the old path: POST /identify turned ids into files that were decoded and embedded again
    ids = _embedded_ids(tiny_ws, 6)
    files = crop_files(tiny_ws.catalog, tiny_ws.home, ids)
    got, vectors = crop_vectors(tiny_ws.catalog, "tiny", ids)
    assert list(got) == sorted(ids)
    stored = vectors[[list(got).index(i) for i in ids]]
    names = [f"crop {i}" for i in ids]
    # the answers a file gets when identified with its stored vector (decoded once, for its size)
    expected = [a.to_dict() for a in tiny_ws.identify(files, k=3, names=names, vectors=stored)]
    with TestClient(create_app(tiny_ws)) as client:  # started first: it warms the encoder on a blank image
        _no_pixels(monkeypatch)
        answers = tiny_ws.identify_crops(ids, k=3)
        r = client.post("/identify", json={"crops": ids, "k": 3})
    assert [a.to_dict() for a in answers] == expected
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(json.dumps(expected))


def test_a_crop_without_a_stored_vector_is_identified_from_its_file(tiny_ws):
    crop = _embedded_ids(tiny_ws, 1)[0]
    with tiny_ws.catalog.write() as con:
        con.execute("DELETE FROM embeddings WHERE annotation_id = ? AND model_id = 'tiny'", [crop])
    file = crop_files(tiny_ws.catalog, tiny_ws.home, [crop])[0]
    (answer,) = tiny_ws.identify_crops([crop], k=2)
    assert answer.error is None
    assert answer.to_dict() == tiny_ws.identify([file], k=2, names=[f"crop {crop}"])[0].to_dict()


def test_an_unknown_crop_id_is_not_found(tiny_ws):
    with pytest.raises(NotFound, match="no crop with id 999999999"):
        tiny_ws.identify_crops([999999999])


def test_species_add_embeds_its_support_crops_from_memory_with_the_same_vectors(tiny_ws, monkeypatch):
    # would fail on the old path: the support crops were written, then read back to be encoded
    name, examples = held_out_examples(tiny_ws)

    def no_read_back(path, *a, **k):
        raise BadImage(f"{path}: read back")

    monkeypatch.setattr("app.workspace.encoders.open_image", no_read_back)
    monkeypatch.setattr("app.workspace.engine.Engine.embed_files", no_read_back)
    change = tiny_ws.species_add("Memoria nova", examples)
    assert change.examples == len(examples)
    monkeypatch.undo()
    with tiny_ws.catalog.read() as con:
        rows = con.execute(
            "SELECT a.annotation_id, a.crop_path FROM annotations a WHERE a.concept = 'Memoria nova' ORDER BY 1"
        ).fetchall()
    assert len(rows) == len(examples)  # the support crops are still stored
    ids, vectors = crop_vectors(tiny_ws.catalog, "tiny", [r[0] for r in rows])
    engine = tiny_ws.engine()
    from_files = engine.embed([open_image(tiny_ws.home / p) for _, p in rows])
    assert list(ids) == [r[0] for r in rows]
    assert np.array_equal(vectors, from_files)  # bit for bit what reading the stored crops back gives
