"""index.sources.fathomnet against a stand-in FathomNet server (tests/fathomnet_standin.py)."""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path

import fathomnet.api
import pytest
from fathomnet.api import images as fn_images
from fathomnet_standin import SAMPLE_IMAGES, SAMPLE_WORMS, Fault, StandIn, box_json, image_json, render_image
from PIL import Image

from index.errors import InvalidInput, SourceError
from index.records import BoxRecord, Taxon
from index.sources import fathomnet as fn_source
from index.sources.fathomnet import fetch_fathomnet

SEB, CRAB, JELLY = "Sebastolobus altivelis", "Chionoecetes tanneri", "Aurelia aurita"
FAST = {"retries": 2, "backoff": 0.01, "timeout": 2.0, "workers": 4}


def uid(name: str) -> str:
    """uuid of a sample image by its short name (e.g. 'seb-1')."""
    return image_json(name, [])["uuid"]


def images_with(concept: str, lo: float | None = None, hi: float | None = None) -> list[str]:
    """Oracle: sample uuids holding ``concept`` within the depth limits, in catalog order."""
    return [
        u
        for u, im in SAMPLE_IMAGES.items()
        if any(b["concept"] == concept for b in im["boundingBoxes"])
        and (lo is None or im["depthMeters"] >= lo)
        and (hi is None or im["depthMeters"] <= hi)
    ]


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.startswith(".") or p.suffix == ".part")


@pytest.fixture
def serve(monkeypatch):
    """Start a StandIn with the given arguments, point the client's env variables at it."""
    started: list[StandIn] = []

    def make(**kwargs) -> StandIn:
        s = StandIn(**kwargs).start()
        started.append(s)
        for key, value in s.env().items():
            monkeypatch.setenv(key, value)
        return s

    yield make
    for s in started:
        s.stop()


def test_happy_path_records_files_and_taxa(serve, tmp_path):
    s = serve()
    res = fetch_fathomnet([SEB], tmp_path, **FAST)

    assert res.skipped == []
    assert [r.source_id for r in res.records] == images_with(SEB)
    by_id = {r.source_id: r for r in res.records}
    for rec in res.records:
        src = SAMPLE_IMAGES[rec.source_id]
        fmt = src["url"].rsplit(".", 1)[1]
        assert rec.source == "fathomnet"
        assert rec.path == tmp_path / f"{rec.source_id}.{fmt}"
        assert rec.path.read_bytes() == render_image(src, fmt)  # exactly what the server sent
        assert rec.url == s.base + src["url"]
        assert (rec.depth_m, rec.latitude, rec.longitude) == (src["depthMeters"], 36.7, -122.0)
        assert rec.timestamp == datetime(2019, 3, 5, 17, 54, 56)
        assert (rec.temperature_c, rec.salinity, rec.oxygen_ml_l, rec.imaging_type) == (4.5, 34.2, 0.6, "ROV")
        assert s.requests[s.image_path(rec.source_id)] == 1
    # every usable box is kept, other concepts included, with its uuid and the image as group
    crab1 = by_id[uid("crab-1")]
    assert crab1.boxes == tuple(
        BoxRecord(b["concept"], b["x"], b["y"], b["width"], b["height"], group_key=uid("crab-1"), source_id=b["uuid"])
        for b in SAMPLE_IMAGES[uid("crab-1")]["boundingBoxes"]
    )
    assert {b.concept for b in crab1.boxes} == {SEB, CRAB}
    taxa = {t.concept: t for t in res.taxa}
    assert taxa[SEB] == Taxon(SEB, "species", "Sebastolobus")
    assert taxa["Sebastidae"] == Taxon("Sebastidae", "family", "Perciformes")
    assert taxa["Animalia"] == Taxon("Animalia", "kingdom", "object")
    assert taxa[CRAB] == Taxon(CRAB, "species", "Chionoecetes")  # a box concept gets its taxa too
    assert JELLY not in taxa
    assert len(res.taxa) == len(taxa)  # one entry per name


def test_base_url_is_read_per_call_not_at_import(serve, tmp_path):
    serve()
    # the client froze its base URL at import; we still reach the stand-in
    assert fn_images.Images.ROOT == fathomnet.api.FATHOMNET_API_URL_DEFAULT
    assert fetch_fathomnet([JELLY], tmp_path, **FAST).records


def test_explicit_urls_beat_the_environment(serve, tmp_path, monkeypatch):
    s = serve()
    monkeypatch.setenv("FATHOMNET_API_URL", "http://127.0.0.1:9/nowhere")
    res = fetch_fathomnet([JELLY], tmp_path, api_url=s.url, worms_url=s.worms_url, **FAST)
    assert [r.source_id for r in res.records] == images_with(JELLY)


def test_rejected_boxes_are_dropped(serve, tmp_path):
    serve()
    res = fetch_fathomnet([CRAB], tmp_path, **FAST)
    crab3 = next(r for r in res.records if r.source_id == uid("crab-3"))
    assert len(SAMPLE_IMAGES[uid("crab-3")]["boundingBoxes"]) == 2
    assert [(b.x, b.y) for b in crab3.boxes] == [(50.0, 20.0)]


def test_image_under_two_concepts_is_fetched_once(serve, tmp_path):
    s = serve()
    res = fetch_fathomnet([SEB, CRAB], tmp_path, **FAST)
    ids = [r.source_id for r in res.records]
    assert ids == list(dict.fromkeys(images_with(SEB) + images_with(CRAB)))
    assert s.requests[s.image_path(uid("crab-1"))] == 1


@pytest.mark.parametrize("limit", [1, 3, 5, 50, None])
def test_max_per_concept(serve, tmp_path, limit):
    serve()
    res = fetch_fathomnet([SEB], tmp_path, max_per_concept=limit, **FAST)
    assert [r.source_id for r in res.records] == images_with(SEB)[:limit]
    assert len(list(tmp_path.iterdir())) == len(images_with(SEB)[:limit])


@pytest.mark.parametrize("limit, pages", [(None, 3), (3, 2)])
def test_queries_are_paged(serve, tmp_path, monkeypatch, limit, pages):
    monkeypatch.setattr(fn_source, "PAGE_SIZE", 2)
    s = serve()
    res = fetch_fathomnet([SEB], tmp_path, max_per_concept=limit, **FAST)
    assert [r.source_id for r in res.records] == images_with(SEB)[:limit]
    assert s.requests["/api/images/query"] == pages


@pytest.mark.parametrize(
    "concept, lo, hi",
    [
        (SEB, None, 700.0),
        (SEB, 800.0, None),
        (SEB, 600.0, 950.0),
        (CRAB, 700.0, 700.0),
        (JELLY, 0.0, 20.0),
        (JELLY, 100.0, None),
    ],
)
def test_depth_filters(serve, tmp_path, concept, lo, hi):
    serve()
    res = fetch_fathomnet([concept], tmp_path, min_depth=lo, max_depth=hi, **FAST)
    assert [r.source_id for r in res.records] == images_with(concept, lo, hi)
    assert all((lo is None or r.depth_m >= lo) and (hi is None or r.depth_m <= hi) for r in res.records)
    assert (res.skipped == []) == bool(images_with(concept, lo, hi))


def test_depth_filters_apply_when_the_server_ignores_them(serve, tmp_path):
    class Deaf(StandIn):  # a server that drops the depth constraints
        def _query(self, c):
            return super()._query({**c, "minDepth": None, "maxDepth": None})

    s = Deaf().start()
    try:
        res = fetch_fathomnet([SEB], tmp_path, min_depth=800.0, api_url=s.url, worms_url=s.worms_url, **FAST)
    finally:
        s.stop()
    assert [r.source_id for r in res.records] == images_with(SEB, 800.0)


@pytest.mark.parametrize("kwargs", [{"max_per_concept": 0}, {"min_depth": 10.0, "max_depth": 5.0}])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(InvalidInput):
        fetch_fathomnet([SEB], tmp_path, **kwargs)


def test_resume_downloads_only_what_is_missing(serve, tmp_path):
    s = serve()
    first = fetch_fathomnet([SEB], tmp_path, **FAST)
    assert s.count("/static/") == len(images_with(SEB))

    again = fetch_fathomnet([SEB], tmp_path, **FAST)  # files complete on disk: no downloads
    assert s.count("/static/") == len(images_with(SEB))
    assert [r.path for r in again.records] == [r.path for r in first.records]

    gone = first.records[2]
    gone.path.unlink()
    fetch_fathomnet([SEB], tmp_path, **FAST)
    assert s.count("/static/") == len(images_with(SEB)) + 1
    assert s.requests[s.image_path(gone.source_id)] == 2 and gone.path.exists()


def test_resume_skips_images_in_the_catalog(serve, tmp_path):
    s = serve()
    in_catalog = set(images_with(SEB)[:3])
    res = fetch_fathomnet([SEB], tmp_path, have=in_catalog.__contains__, **FAST)
    assert sorted(res.existing) == sorted(in_catalog)
    assert [r.source_id for r in res.records] == images_with(SEB)[3:]
    assert all(s.requests[s.image_path(u)] == 0 for u in in_catalog)
    assert s.count("/static/") == len(images_with(SEB)) - 3


def test_a_damaged_file_on_disk_is_fetched_again(serve, tmp_path):
    s = serve()
    first = fetch_fathomnet([JELLY], tmp_path, **FAST)
    victim = first.records[0].path
    victim.write_bytes(victim.read_bytes()[:40])
    res = fetch_fathomnet([JELLY], tmp_path, **FAST)
    assert res.skipped == []
    assert s.requests[s.image_path(first.records[0].source_id)] == 2
    with Image.open(victim) as im:
        im.load()


# fault, retries, lands?, requests to the faulty image, words expected in the failure reason
FAULTS = [
    (Fault("500", times=2), 2, True, 3, None),
    (Fault("500"), 2, False, 3, "HTTP 500"),
    (Fault("slow", times=1, delay=1.0), 2, True, 2, None),
    (Fault("slow", delay=1.0), 1, False, 2, "timed out"),
    (Fault("truncate", times=1), 2, True, 2, None),
    (Fault("truncate"), 2, False, 3, "cut short"),
    (Fault("corrupt"), 1, False, 2, "not a readable image"),
    (Fault("close", times=1), 2, True, 2, None),
    (Fault("404"), 4, False, 1, "HTTP 404"),
]


@pytest.mark.parametrize(
    "fault, retries, lands, hits, reason", FAULTS, ids=[f"{f.kind}-x{f.times or 'all'}" for f, *_ in FAULTS]
)
def test_download_faults(serve, tmp_path, fault, retries, lands, hits, reason):
    victim = images_with(SEB)[1]
    path = SAMPLE_IMAGES[victim]["url"]  # relative: the path the stand-in serves it under
    s = serve(faults={path: fault})
    res = fetch_fathomnet([SEB], tmp_path, retries=retries, backoff=0.01, timeout=0.3, workers=4)

    landed = {r.source_id for r in res.records}
    assert landed == set(images_with(SEB)) - (set() if lands else {victim})  # the rest land
    assert s.requests[path] == hits
    if lands:
        assert res.skipped == []
    else:
        assert [item for item, _ in res.skipped] == [victim]
        assert reason in res.skipped[0][1] and "\n" not in res.skipped[0][1]
        assert not list(tmp_path.glob(victim + "*"))  # no half file under the final name
    assert leftovers(tmp_path) == []
    for r in res.records:
        with Image.open(r.path) as im:
            im.load()


def test_progress_bar(serve, tmp_path, capsys):
    serve()
    fetch_fathomnet([JELLY], tmp_path, progress=True, **FAST)
    assert "FathomNet frames" in capsys.readouterr().err


def test_server_down_raises_source_error(tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("FATHOMNET_API_URL", f"http://127.0.0.1:{port}/api")
    with pytest.raises(SourceError, match=rf"127\.0\.0\.1:{port}/api/images/query") as err:
        fetch_fathomnet([SEB], tmp_path, retries=1, backoff=0.01, timeout=1.0)
    assert "\n" not in str(err.value) and "ConnectionError" in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "fault, ok", [(Fault("500", times=1), True), (Fault("500"), False), (Fault("slow", delay=1.0), False)]
)
def test_query_faults(serve, tmp_path, fault, ok):
    s = serve(faults={"/api/images/query": fault})
    if ok:
        assert len(fetch_fathomnet([SEB], tmp_path, retries=2, backoff=0.01, timeout=0.3).records) == 5
    else:
        with pytest.raises(SourceError, match=r"query for 'Sebastolobus altivelis' failed.*/api/images/query"):
            fetch_fathomnet([SEB], tmp_path, retries=2, backoff=0.01, timeout=0.3)
        assert s.requests["/api/images/query"] == 3


def test_malformed_json_is_a_clear_error(serve, tmp_path):
    serve(faults={"/api/images/query": Fault("malformed")})
    with pytest.raises(SourceError, match=r"malformed JSON from http://127\.0\.0\.1:\d+/api/images/query"):
        fetch_fathomnet([SEB], tmp_path, **FAST)


@pytest.mark.parametrize(
    "payload, words",
    [
        ({"content": []}, "where a list of images was expected"),
        ([{"uuid": 5, "depthMeters": "deep"}], "do not match AImageDTO"),
        (["not-an-image"], "do not match AImageDTO"),
    ],
)
def test_wrong_json_shape_is_a_clear_error(tmp_path, payload, words):
    class Odd(StandIn):
        def _query(self, c):
            return payload

    s = Odd().start()
    try:
        with pytest.raises(SourceError, match=words):
            fetch_fathomnet([SEB], tmp_path, api_url=s.url, worms_url=s.worms_url, **FAST)
    finally:
        s.stop()


@pytest.mark.parametrize(
    "fault, words", [(Fault("500"), "HTTP 500"), (Fault("malformed"), "malformed JSON"), (Fault("404"), "HTTP 404")]
)
def test_worms_failure_keeps_the_images(serve, tmp_path, fault, words):
    serve(faults={f"/worms/taxa/ancestors/{JELLY}": fault})
    res = fetch_fathomnet([JELLY], tmp_path, **FAST)
    assert [r.source_id for r in res.records] == images_with(JELLY)
    assert [item for item, _ in res.skipped] == [JELLY]
    assert words in res.skipped[0][1] and "taxa/ancestors/Aurelia%20aurita" in res.skipped[0][1]
    assert res.taxa == [Taxon(JELLY)]


def test_concept_unknown_to_worms(serve, tmp_path):
    worms = {k: v for k, v in SAMPLE_WORMS.items() if k != JELLY}
    serve(worms=worms)
    res = fetch_fathomnet([JELLY], tmp_path, **FAST)
    assert len(res.records) == 2 and res.skipped[0][0] == JELLY and "HTTP 404" in res.skipped[0][1]


def test_concept_without_images_is_reported(serve, tmp_path):
    serve()
    res = fetch_fathomnet(["Bathochordaeus charon", JELLY], tmp_path, **FAST)
    assert len(res.records) == 2
    assert ("Bathochordaeus charon", "FathomNet has no images of it (within the depth limits)") in res.skipped


def test_unsafe_uuid_and_missing_url_are_failures(serve, tmp_path):
    evil = image_json("evil", [box_json(JELLY, 1, 1, 5, 5)], depth=10.0, uuid="../evil")
    no_url = image_json("no-url", [box_json(JELLY, 1, 1, 5, 5)], depth=10.0, url=None)
    good = image_json("good", [box_json(JELLY, 1, 1, 5, 5)], depth=10.0)
    serve(images={"../evil": evil, no_url["uuid"]: no_url, good["uuid"]: good})
    res = fetch_fathomnet([JELLY], tmp_path, **FAST)
    assert [r.source_id for r in res.records] == [good["uuid"]]
    reasons = dict(res.skipped)
    assert "unusable image uuid" in next(v for k, v in reasons.items() if "evil" in k)
    assert reasons[no_url["uuid"]] == "FathomNet gave no image URL"
    assert not (tmp_path.parent / "evil.png").exists()


def test_standin_answers_the_client_itself(serve, monkeypatch):
    """The stand-in mirrors what the unmodified client functions send and parse."""
    from fathomnet import dto
    from fathomnet.api import worms as fn_worms

    s = serve()
    monkeypatch.setattr(fn_images.Images, "ROOT", s.url)
    monkeypatch.setattr(fn_worms.Worms, "ROOT", s.worms_url)
    found = fn_images.find(dto.GeoImageConstraints(concept=SEB, minDepth=800.0, limit=10))
    assert [im.uuid for im in found] == images_with(SEB, 800.0)
    assert [im.uuid for im in fn_images.find_by_concept(CRAB)] == images_with(CRAB)
    assert fn_images.find_by_uuid(uid("jelly-2")).depthMeters == 48.5
    assert fn_worms.get_parent_name(JELLY) == "Aurelia"
    assert fn_worms.get_ancestors_names(JELLY)[:2] == ["object", "Animalia"]
