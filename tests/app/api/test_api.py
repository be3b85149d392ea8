"""The HTTP API (``app.api``) as a client meets it: FastAPI's TestClient over the tiny workspace."""

from __future__ import annotations

import base64
import io
import shutil
import struct
import threading
import zlib

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.api import ApiSettings, create_app
from app.workspace import Identification, Workspace
from tests.app.workspace.test_species import held_out_examples


@pytest.fixture(scope="module")
def read_home(tiny_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("api") / "home"
    shutil.copytree(tiny_home, home)
    return home


@pytest.fixture(scope="module")
def client(read_home):
    with TestClient(create_app(Workspace(read_home))) as c:
        yield c


@pytest.fixture(scope="module")
def crop_ids(client):
    hits = client.post("/search", json={"crop": 1, "k": 5}).json()
    return [1] + [h["annotation_id"] for h in hits]


@pytest.fixture(scope="module")
def crop_png(read_home):
    return next(p for p in sorted((read_home / "crops").rglob("*.png"))).read_bytes()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape), no pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(  # noqa: E731
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )
    )
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# -- every endpoint ---------------------------------------------------------------------


def test_health_and_status(client):
    assert client.get("/health").json() == {"status": "ok"}
    status = client.get("/status").json()
    assert (status["model_id"], status["generation"], status["has_index"]) == ("tiny", "gen-0001", True)
    assert status["crops"] > 0 and status["species"] == 8


def test_identify_multipart_json_and_crop_ids_agree(client, crop_png, read_home):
    """The same crop sent as a file, as base64 and by its id gets the same answer as the Workspace gives."""
    expected = Workspace(read_home).identify([crop_png], k=2)[0]
    as_file = client.post("/identify", files=[("file", ("a.png", crop_png, "image/png"))], data={"k": "2"})
    as_b64 = client.post("/identify", json={"images": [base64.b64encode(crop_png).decode()], "names": ["mine"], "k": 2})
    assert as_file.status_code == as_b64.status_code == 200, (as_file.text, as_b64.text)
    a, b = as_file.json()[0], as_b64.json()[0]
    assert (a["name"], b["name"]) == ("a.png", "mine")
    assert a["species"] == b["species"] == expected.species and len(a["top"]) == 2
    assert a["probability"] == pytest.approx(expected.probability, abs=1e-5)
    assert set(a) == set(Identification("x").to_dict())  # the dataclass's to_dict, not a third shape


def test_identify_many_and_by_crop_id(client, crop_ids, crop_png):
    r = client.post("/identify", json={"images": [base64.b64encode(crop_png).decode()], "crops": crop_ids[:3]})
    assert r.status_code == 200, r.text
    assert [x["name"] for x in r.json()] == ["upload 1"] + [f"crop {c}" for c in crop_ids[:3]]
    assert all(x["species"] and x["error"] is None for x in r.json())


def test_search_by_crop_image_and_filter(client, crop_ids, crop_png):
    r = client.post("/search", json={"crop": crop_ids[0], "k": 4, "where": "split=test"})
    assert r.status_code == 200, r.text
    hits = r.json()
    assert 0 < len(hits) <= 4 and all(h["split"] == "test" for h in hits)
    assert crop_ids[0] not in [h["annotation_id"] for h in hits]
    by_image = client.post("/search", files=[("file", ("q.png", crop_png, "image/png"))], data={"k": "3"})
    assert by_image.status_code == 200 and len(by_image.json()) == 3
    assert by_image.json()[0]["score"] > 0.99  # the crop itself is in the index


def test_species_list(client):
    species = client.get("/species").json()
    assert len(species) >= 8 and {"name", "status", "examples", "confusable"} <= set(species[0])


def test_species_add_and_remove(tiny_ws):
    name, files = held_out_examples(tiny_ws)
    with TestClient(create_app(tiny_ws)) as c:
        added = c.post(
            "/species",
            data={"name": name, "genus": "Testus"},
            files=[("file", (f.name, f.read_bytes(), "image/png")) for f in files],
        )
        assert added.status_code == 200, added.text
        assert (added.json()["action"], added.json()["examples"]) == ("added", 5)
        assert any(s["name"] == name and s["status"] == "added" for s in c.get("/species").json())
        again = c.post("/species", json={"name": name, "images": [base64.b64encode(files[0].read_bytes()).decode()]})
        assert again.status_code == 422 and "already exists" in again.json()["error"]
        removed = c.delete(f"/species/{name}")
        assert removed.status_code == 200 and removed.json()["action"] == "removed"
        assert c.delete(f"/species/{name}").status_code in (404, 422)


def test_openapi_docs_describe_the_result_dataclasses(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/identify", "/search", "/species", "/status", "/health"} <= set(spec["paths"])
    props = spec["components"]["schemas"]["IdentificationRecord"]["properties"]
    assert set(props) == set(Identification("x").to_dict())
    body = spec["paths"]["/identify"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)


# -- bad and hostile input: one JSON line and a status code, never a traceback ------------


def _bytes_of(image: Image.Image, fmt="PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    "data, status, words",
    [
        (b"this is not an image", 422, "not an image"),
        (_bytes_of(Image.new("RGB", (64, 64), "red"))[:60], 422, "truncated"),
        (png_header(20_000, 20_000), 422, "decompression bomb"),
        (b"", 422, "empty"),
    ],
)
def test_hostile_uploads(client, data, status, words):
    r = client.post("/identify", files=[("file", ("bad.png", data, "image/png"))])
    assert r.status_code == status, r.text
    assert words in r.json()["error"] and "Traceback" not in r.text and "\n" not in r.json()["error"]


@pytest.mark.parametrize(
    "body, words",
    [
        ({"images": ["%%%not base64%%%"]}, "base64"),
        ({"k": 0, "crops": [1]}, "k"),
        ({"crops": []}, "at least one image"),
        ({"unexpected": 1, "crops": [1]}, "unexpected"),
    ],
)
def test_bad_json_fields(client, body, words):
    r = client.post("/identify", json=body)
    assert r.status_code == 422 and words in r.json()["error"], r.text


def test_not_json_and_wrong_content_type(client):
    assert (
        client.post("/identify", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    )
    r = client.post("/identify", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 422 and "content type" in r.json()["error"]


def test_bad_filter_and_unknown_crop_ids(client):
    r = client.post("/search", json={"crop": 1, "where": "colour=blue"})
    assert r.status_code == 422 and r.json()["type"] == "FilterError"
    for path, body in (("/search", {"crop": 10**9}), ("/identify", {"crops": [10**9]})):
        r = client.post(path, json=body)
        assert r.status_code == 404 and r.json()["type"] == "NotFound", r.text
    assert client.post("/search", json={"k": 3}).status_code == 422  # neither image nor crop


def test_request_size_limit_declared_and_streamed(read_home):
    app = create_app(Workspace(read_home), ApiSettings(max_request_bytes=10_000))
    with TestClient(app) as c:
        huge = {"images": ["A" * 20_000]}
        r = c.post("/identify", json=huge)
        assert r.status_code == 413 and r.json()["type"] == "BodyTooLarge"
        chunks = (b"x" * 4096 for _ in range(10))  # no Content-Length: counted as it streams
        r = c.post("/identify", content=chunks, headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        assert c.post("/identify", json={"crops": [1]}).status_code == 200  # under the limit still works


def test_unexpected_errors_are_one_json_line(read_home, monkeypatch):
    ws = Workspace(read_home)
    monkeypatch.setattr(ws, "status", lambda: 1 / 0)
    with TestClient(create_app(ws), raise_server_exceptions=False) as c:
        r = c.get("/status")
    assert r.status_code == 500 and r.json()["type"] == "InternalError" and "Traceback" not in r.text


# -- security ---------------------------------------------------------------------------


def test_token_is_checked_on_every_request(read_home):
    with TestClient(create_app(Workspace(read_home), ApiSettings(token="s3cret"))) as c:
        for path in ("/health", "/docs", "/openapi.json", "/nowhere"):
            assert c.get(path).status_code == 401
        assert c.get("/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        r = c.post("/identify", json={"crops": [1]}, headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200


def test_read_only_refuses_writes(read_home):
    with TestClient(create_app(Workspace(read_home), ApiSettings(read_only=True))) as c:
        r = c.post("/species", json={"name": "x", "images": ["AAAA"]})
        assert r.status_code == 403 and r.json()["type"] == "ReadOnly"
        assert c.delete("/species/x").status_code == 403
        assert c.post("/identify", json={"crops": [1]}).status_code == 200


# -- the engine follows the catalog -------------------------------------------------------


def test_rebuild_is_swapped_in_under_live_requests(tiny_ws):
    """Threads identify while another Workspace on the same home (as a CLI process would)
    rebuilds the index: no request fails, and the new generation is served afterwards."""
    failures, answered, stop = [], [], threading.Event()
    with TestClient(create_app(tiny_ws)) as c:
        before = c.get("/status").json()["generation"]

        def hammer() -> None:
            while not stop.is_set():
                r = c.post("/identify", json={"crops": [1]})
                (answered if r.status_code == 200 else failures).append(r.status_code)

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        built = Workspace(tiny_ws.home).index_build(rebuild=True)
        for _ in range(20):  # keep going until an answer comes from the new engine
            c.post("/identify", json={"crops": [1]})
            if tiny_ws.engine().generation == built.generation:
                break
        stop.set()
        for t in threads:
            t.join()
        assert failures == [] and len(answered) > 3
        assert built.generation != before and c.get("/status").json()["generation"] == built.generation
        assert tiny_ws.engine().generation == built.generation
