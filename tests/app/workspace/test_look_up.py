"""``Workspace.look_up``: one query answered and searched from one embedding (the explorer's Identify page)."""

from __future__ import annotations

from index.catalog.lookup import crop_files
from tests.app.workspace.test_stored_and_memory import _embedded_ids, _no_pixels


def test_an_upload_is_embedded_once_and_answered_and_searched_as_identify_and_search_would(tiny_ws, monkeypatch):
    # would fail: a look_up that embeds twice, or whose answer / gallery differ from identify and search's
    crop_id = _embedded_ids(tiny_ws, 3)[1]
    path = crop_files(tiny_ws.catalog, tiny_ws.home, [crop_id])[0]
    want = tiny_ws.identify([path], k=5)[0]
    want_hits = [h.annotation_id for h in tiny_ws.search(path, k=4)]
    engine = tiny_ws.engine()
    calls = []
    real = type(engine).embed
    monkeypatch.setattr(type(engine), "embed", lambda self, images: calls.append(len(images)) or real(self, images))
    found = tiny_ws.look_up(path.read_bytes(), name="upload.png", k=4)
    assert calls == [1]
    assert found.identification.name == "upload.png" and found.image is not None
    assert (found.identification.species, found.identification.top) == (want.species, want.top)
    assert [h.annotation_id for h in found.similar] == want_hits


def test_a_catalog_crop_is_looked_up_from_its_stored_vectors_and_left_out_of_its_gallery(tiny_ws, monkeypatch):
    # would fail: decoding the crop's file or running the encoder, or the crop finding itself
    crop_id = _embedded_ids(tiny_ws, 3)[0]
    _no_pixels(monkeypatch)
    found = tiny_ws.look_up(crop_id, k=4)
    assert found.identification.error is None and found.identification.species is not None
    assert found.similar and crop_id not in {h.annotation_id for h in found.similar}


def test_an_unreadable_upload_is_an_answer_with_its_error_and_no_gallery(tiny_ws):
    found = tiny_ws.look_up(b"not an image", name="broken.png")
    assert found.identification.error and found.identification.name == "broken.png"
    assert found.similar == () and found.image is None
