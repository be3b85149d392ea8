"""The Label Studio ML backend (``/label-studio``) as Label Studio meets it, over the tiny workspace:
the protocol bodies, the label mapping rules, image fetching, and learning from annotations."""

from __future__ import annotations

import base64
import http.server
import logging
import shutil
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from app.api import ApiSettings, create_app
from app.api.label_studio.config import parse_label_config
from app.api.label_studio.fetch import ImageFetcher
from app.api.label_studio.protocol import project_id
from app.api.label_studio.settings import LabelStudioSettings
from app.workspace import Workspace
from index.errors import BadImage, InvalidInput

LS_LOG = "app.api.label_studio"


def crops(ws, split=None, limit=5):
    """(annotation_id, crop_path, concept) straight from the catalog (the oracle), by id."""
    sql, params = "SELECT annotation_id, crop_path, concept FROM annotations WHERE TRUE", []
    if split:
        sql, params = sql + " AND split = ?", params + [split]
    with ws.catalog.read() as con:
        return con.execute(sql + " ORDER BY annotation_id LIMIT ?", params + [limit]).fetchall()


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def choices_config(labels, name="species", extra="") -> str:
    options = "".join(f'<Choice value="{label}"{extra}/>' for label in labels)
    return (
        f'<View><Image name="image" value="$image"/><Choices name="{name}" toName="image" choice="single">'
        f"{options}</Choices></View>"
    )


def rect_config(labels) -> str:
    options = "".join(f'<Label value="{label}"/>' for label in labels)
    return (
        f'<View><Image name="image" value="$image"/>'
        f'<RectangleLabels name="label" toName="image">{options}</RectangleLabels></View>'
    )


# -- the label config --------------------------------------------------------------------------
def test_config_reads_choices_rectangles_and_predicted_values():
    xml = (
        '<View><Image name="img" value="$photo"/><Choices name="sp" toName="img">'
        '<Choice value="Damsel" predicted_values="Chromis viridis, Chromis chrysura"/><Choice value="Unknown"/>'
        '</Choices><RectangleLabels name="box" toName="img"><Label value="Chromis viridis"/></RectangleLabels>'
        '<Choices name="other" toName="nothing"><Choice value="x"/></Choices></View>'
    )
    config = parse_label_config(xml)
    assert config.images == (("img", "photo"),)
    assert [(c.name, c.kind, c.labels) for c in config.controls] == [
        ("sp", "choices", ("Damsel", "Unknown")),
        ("box", "rectanglelabels", ("Chromis viridis",)),
    ]
    choices = config.controls[0]
    assert choices.label_for("chromis CHRYSURA") == "Damsel"
    assert choices.label_for("Damsel") is None  # a label is a species only when it names itself
    assert choices.fallback("unknown") == "Unknown" and config.controls[1].fallback() is None


@pytest.mark.parametrize(
    "xml, says",
    [
        (None, "no label config"),
        ("<View><Image name='i' value='$i'>", "not valid XML"),
        (
            "<View><Text name='t' value='$text'/><Choices name='c' toName='t'><Choice value='a'/></Choices></View>",
            "no <Image",
        ),
        (
            "<View><Image name='i' value='$i'/><TextArea name='c' toName='i'/></View>",
            "no <Choices> or <RectangleLabels>",
        ),
    ],
)
def test_config_errors_are_one_line(xml, says):
    with pytest.raises(InvalidInput, match=says):
        parse_label_config(xml)


@pytest.mark.parametrize(
    "value, expected",
    [
        (3, 3),
        ("3", 3),
        ("12.1733402325", 12),
        ({"id": 4, "title": "x"}, 4),
        (None, None),
        ("abc", None),
        (True, None),
        ("²", None),
    ],
)
def test_project_id(value, expected):
    assert project_id(value) == expected


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.builds(lambda labels: choices_config(labels), st.lists(st.text(), max_size=4))))
def test_any_label_config_parses_or_is_refused_in_one_line(xml):
    try:
        config = parse_label_config(xml)
    except InvalidInput as exc:
        assert "\n" not in str(exc)
    else:
        assert config.images and config.controls


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
        lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=5,
    )
)
def test_project_id_never_raises(value):
    assert project_id(value) is None or isinstance(project_id(value), int)


# -- fetching task images ------------------------------------------------------------------------
class _Files(http.server.BaseHTTPRequestHandler):
    """Serves /data/upload/ok.png to requests bearing 'Token secret', 401 otherwise; /big is 2 kB."""

    png = b""
    seen: list = []

    def do_GET(self):  # noqa: N802
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        if self.path == "/big":
            body = b"x" * 2048
        elif self.headers.get("Authorization") != "Token secret":
            self.send_response(401), self.end_headers()
            return
        else:
            body = self.png
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def files_server(tiny_home):
    _Files.png = (tiny_home / crops(Workspace(tiny_home), split="test", limit=1)[0][1]).read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_uploaded_file_with_the_token_only_to_label_studio(files_server):
    fetcher = ImageFetcher(files_server, "secret")
    assert fetcher.fetch("/data/upload/ok.png") == _Files.png
    assert _Files.seen[-1] == ("/data/upload/ok.png", "Token secret")
    assert fetcher.headers_for("http://elsewhere.example/x.png") == {}  # the token never leaves for another host
    assert ImageFetcher(files_server, "a.b.c").headers_for(files_server + "/x") == {"Authorization": "Bearer a.b.c"}


@pytest.mark.parametrize(
    "fetcher, ref, says",
    [
        (ImageFetcher(None, None), "/data/upload/ok.png", "set LABEL_STUDIO_URL"),
        ("no token", "/data/upload/ok.png", r"HTTP 401 \(no token: set LABEL_STUDIO_API_KEY"),
        ("wrong token", "/data/upload/ok.png", "token was refused"),
        ("small", "/big", "over the 1,000-byte limit"),
        ("token", "/missing.png", "HTTP 401"),
        (ImageFetcher(None, None), "s3://bucket/a.png", "must be served by Label Studio"),
        (ImageFetcher(None, None), "data:image/png;base64,@@@", "not valid base64"),
        (ImageFetcher(None, None), "", "no image URL"),
        (ImageFetcher(None, None), "http://127.0.0.1:9/x.png", "cannot fetch"),
    ],
)
def test_fetch_failures_are_one_line(files_server, fetcher, ref, says):
    fetcher = {
        "no token": ImageFetcher(files_server, None),
        "wrong token": ImageFetcher(files_server, "nope"),
        "small": ImageFetcher(files_server, "secret", max_bytes=1000),
        "token": ImageFetcher(files_server, "bad"),
    }.get(fetcher, fetcher)
    with pytest.raises(BadImage, match=says) as caught:
        fetcher.fetch(ref)
    assert "\n" not in str(caught.value)


def test_fetch_data_uri(tiny_home):
    path = tiny_home / crops(Workspace(tiny_home), split="test", limit=1)[0][1]
    assert ImageFetcher().fetch(data_uri(path)) == path.read_bytes()


# -- predictions ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def home(tiny_home, tmp_path_factory, drawn_detector):
    home = tmp_path_factory.mktemp("ls") / "home"
    shutil.copytree(tiny_home, home)
    shutil.copytree(drawn_detector, home / "models" / drawn_detector.name)
    from app.workspace.demo import register_frame_detector

    register_frame_detector(Workspace(home), home / "models" / drawn_detector.name)  # the current detector
    return home


@pytest.fixture(scope="module")
def client(home):
    with TestClient(create_app(Workspace(home))) as c:
        yield c


@pytest.fixture(scope="module")
def species(home):
    return list(Workspace(home).engine().prototypes.names)


def tasks_of(rows, home, start=1):
    return [{"id": start + n, "data": {"image": data_uri(home / path)}} for n, (_, path, _) in enumerate(rows)]


def test_health_and_setup_answer_the_model_version(client, species):
    assert client.get("/label-studio/health").json() == {"status": "UP", "model_class": "oceanid"}
    setup = client.post(
        "/label-studio/setup",
        json={
            "project": "1.1733402325",
            "schema": choices_config(species),
            "hostname": "http://localhost:8080",
            "access_token": "x",
        },
    )
    assert setup.status_code == 200 and setup.json()["model_version"].startswith("tiny@gen-")


def test_choices_predictions_are_oceanids_answers(client, home, species, caplog):
    rows = crops(Workspace(home), split="test", limit=12)
    body = {
        "tasks": tasks_of(rows, home),
        "project": "1.1733402325",
        "label_config": choices_config([*species, "Unknown", "Not a fish"]),
    }
    answer = client.post("/label-studio/predict", json=body)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    oracle = Workspace(home).identify([home / p for _, p, _ in rows], k=3)
    assert len(results) == len(rows)
    for result, truth in zip(results, oracle, strict=True):
        expected = "Unknown" if truth.unknown else truth.species
        assert [r["value"]["choices"] for r in result["result"]] == [[expected]]
        assert result["result"][0]["from_name"] == "species" and result["result"][0]["to_name"] == "image"
        assert result["model_version"] == answer.json()["model_version"]
    assert not any(r["result"][0]["value"]["choices"] == ["Not a fish"] for r in results)
    right = sum(r["result"][0]["value"]["choices"] == [c] for r, (_, _, c) in zip(results, rows, strict=True))
    assert right >= len(rows) // 2  # the tiny model beats chance (1 in 6) by far


def test_species_missing_from_the_config_map_to_unknown_and_are_counted(client, home, species, caplog):
    rows = crops(Workspace(home), split="test", limit=12)
    kept = species[:2]
    body = {"tasks": tasks_of(rows, home), "label_config": choices_config([*kept, "Unknown"]), "project": 2}
    with caplog.at_level(logging.INFO, logger=LS_LOG):
        results = client.post("/label-studio/predict", json=body).json()["results"]
    labels = {r["result"][0]["value"]["choices"][0] for r in results}
    assert labels <= {*kept, "Unknown"} and "Unknown" in labels
    oracle = Workspace(home).identify([home / p for _, p, _ in rows], k=3)
    missing = sum(1 for o in oracle if not o.unknown and o.species not in kept)
    lines = [r.getMessage() for r in caplog.records if "label-studio predict project 2" in r.getMessage()]
    assert len(lines) == 1 and f"{missing} species not in the config -> 'Unknown'" in lines[0]


def test_without_a_fallback_label_nothing_is_predicted_for_those(client, home, species):
    rows = crops(Workspace(home), split="test", limit=12)
    body = {"tasks": tasks_of(rows, home), "label_config": choices_config(species[:1]), "project": 3}
    results = client.post("/label-studio/predict", json=body).json()["results"]
    assert all(r["result"] == [] or r["result"][0]["value"]["choices"] == species[:1] for r in results)
    assert any(r["result"] == [] for r in results)


def test_an_unreadable_image_gets_an_empty_prediction_and_one_line(client, home, species, caplog):
    rows = crops(Workspace(home), split="test", limit=2)
    tasks = [
        *tasks_of(rows, home),
        {"id": 90, "data": {"image": "http://127.0.0.1:9/gone.png"}},
        {"id": 91, "data": {"image": "data:image/png;base64,aGVsbG8="}},
        {"id": 92, "data": {}},
    ]
    with caplog.at_level(logging.WARNING, logger=LS_LOG):
        answer = client.post(
            "/label-studio/predict", json={"tasks": tasks, "label_config": choices_config(species), "project": 4}
        )
    results = answer.json()["results"]
    assert answer.status_code == 200 and [bool(r["result"]) for r in results] == [True, True, False, False, False]
    for task in (90, 91, 92):
        assert sum(f"task {task}: no prediction" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("config", [None, "<View><Text name='t' value='$t'/></View>", "<View"])
def test_a_config_oceanid_cannot_fill_gives_empty_predictions_and_one_line(client, home, config, caplog):
    rows = crops(Workspace(home), split="test", limit=3)
    with caplog.at_level(logging.WARNING, logger=LS_LOG):
        answer = client.post(
            "/label-studio/predict", json={"tasks": tasks_of(rows, home), "label_config": config, "project": 77}
        )
    assert answer.status_code == 200
    assert [r["result"] for r in answer.json()["results"]] == [[], [], []]
    assert sum("predict project 77" in r.getMessage() for r in caplog.records) == 1


def test_rectangles_from_the_detector_in_percent(client, drawn_frames):
    from PIL import Image

    tasks = [{"id": n, "data": {"image": data_uri(p)}} for n, p in enumerate(drawn_frames)]
    answer = client.post(
        "/label-studio/predict", json={"tasks": tasks, "project": 5, "label_config": rect_config(["Unknown"])}
    )
    results = answer.json()["results"]
    assert len(results) == len(drawn_frames)
    regions = [r for result in results for r in result["result"]]
    assert regions, "the drawn detector finds discs in drawn frames"
    for region in regions:
        v = region["value"]
        assert region["type"] == "rectanglelabels" and v["rectanglelabels"] == ["Unknown"]
        assert 0 <= v["x"] <= 100 and 0 < v["width"] <= 100 - v["x"] + 1e-6
        assert region["original_width"] == Image.open(drawn_frames[0]).width


# -- tokens ----------------------------------------------------------------------------------------
def test_token_basic_auth_and_a_missing_token(home, caplog):
    with TestClient(create_app(Workspace(home), ApiSettings(token="s3cret"))) as c:
        basic = base64.b64encode(b"label-studio:s3cret").decode()
        assert c.get("/label-studio/health", headers={"Authorization": f"Basic {basic}"}).status_code == 200
        assert c.get("/label-studio/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        with caplog.at_level(logging.WARNING, logger="app.api.guards"):
            refused = c.post("/label-studio/predict", json={"tasks": []})
        assert refused.status_code == 401 and refused.json()["type"] == "Unauthorized"
        assert [r.getMessage() for r in caplog.records if r.name == "app.api.guards"] == [
            "refused POST /label-studio/predict: no token"
        ]
        wrong = base64.b64encode(b"label-studio:nope").decode()
        assert c.get("/label-studio/health", headers={"Authorization": f"Basic {wrong}"}).status_code == 401


# -- learning from annotations ------------------------------------------------------------------------
@pytest.fixture
def learner(tiny_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(tiny_home, home)
    ws = Workspace(home)
    settings = LabelStudioSettings(min_examples=2)
    from fastapi import FastAPI

    from app.api import errors
    from app.api.label_studio import router

    app = FastAPI()
    errors.install(app)
    app.include_router(router(ws, ApiSettings(), settings), prefix="/label-studio")
    with TestClient(app) as c:
        yield c, ws


def event(action, project, task, annotation, image, result, config):
    return {
        "action": action,
        "project": {"id": project, "label_config": config},
        "task": {"id": task, "data": {"image": image}, "project": project},
        "annotation": {"id": annotation, "task": task, "project": project, "result": result},
    }


def choice(label):
    return [{"from_name": "species", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]


def catalog_rows(ws):
    with ws.catalog.read() as con:
        return con.execute(
            "SELECT i.source_id, a.concept, a.group_key FROM annotations a JOIN images i "
            "USING (image_id) WHERE i.source = 'label-studio' ORDER BY 1"
        ).fetchall()


def test_an_annotation_becomes_a_truth_crop_and_changes_the_next_prediction(learner):
    client, ws = learner
    species = list(ws.engine().prototypes.names)
    ((_, path, concept),) = crops(ws, split="test", limit=1)
    config = choices_config(species)
    task = {"id": 7, "data": {"image": data_uri(ws.home / path)}}
    before = client.post("/label-studio/predict", json={"tasks": [task], "label_config": config, "project": 1}).json()[
        "results"
    ][0]
    said = before["result"][0]["value"]["choices"][0] if before["result"] else None
    other = next(s for s in species if s != said)
    created = client.post(
        "/label-studio/webhook",
        json=event("ANNOTATION_CREATED", 1, 7, 70, task["data"]["image"], choice(other), config),
    )
    assert created.json()["status"] == "stored", created.text
    assert catalog_rows(ws) == [("project-1/annotation-70/task-7", other, "label-studio:project-1/task-7")]
    again = client.post(
        "/label-studio/webhook",
        json=event("ANNOTATION_CREATED", 1, 7, 70, task["data"]["image"], choice(other), config),
    )
    assert again.json()["status"] == "unchanged" and len(catalog_rows(ws)) == 1  # idempotent on the ids
    after = client.post("/label-studio/predict", json={"tasks": [task], "label_config": config, "project": 1}).json()[
        "results"
    ][0]
    assert after["result"][0]["value"]["choices"] == [other] and after["result"][0]["score"] >= 0.97
    updated = client.post(
        "/label-studio/webhook",
        json=event("ANNOTATION_UPDATED", 1, 7, 70, task["data"]["image"], choice(said or species[0]), config),
    )
    assert updated.json()["status"] == "replaced" and [r[1] for r in catalog_rows(ws)] == [said or species[0]]
    deleted = client.post(
        "/label-studio/webhook",
        json={"action": "ANNOTATIONS_DELETED", "project": {"id": 1}, "annotations": [{"id": 70}]},
    )
    assert deleted.json()["status"] == "removed" and catalog_rows(ws) == []
    restored = client.post(
        "/label-studio/predict", json={"tasks": [task], "label_config": config, "project": 1}
    ).json()["results"][0]
    assert restored["result"] == before["result"]


def test_a_new_species_is_added_after_n_examples_and_removed_when_they_go(learner):
    client, ws = learner
    held = crops(ws, split="holdout", limit=1000)
    name = held[0][2]
    rows = [r for r in held if r[2] == name][:2]
    assert name not in ws.engine().prototypes.names
    config = choices_config([*ws.engine().prototypes.names, name])
    first = client.post(
        "/label-studio/webhook",
        json=event("ANNOTATION_CREATED", 2, 1, 11, data_uri(ws.home / rows[0][1]), choice(name), config),
    ).json()
    assert first["changes"][0]["species_added"] == [] and name not in ws.engine().prototypes.names
    second = client.post(
        "/label-studio/webhook",
        json=event("ANNOTATION_CREATED", 2, 2, 12, data_uri(ws.home / rows[1][1]), choice(name), config),
    ).json()
    assert second["changes"][0]["species_added"] == [name] and ws.engine().origins[name] == "added"
    gone = client.post(
        "/label-studio/webhook", json={"action": "ANNOTATION_DELETED", "project": 2, "annotation": {"id": 12}}
    ).json()
    assert gone["changes"][0]["species_removed"] == [name] and name not in ws.engine().prototypes.names


def test_rectangle_annotations_become_box_crops(learner, drawn_frames):
    client, ws = learner
    config = rect_config(["Chromis", "Unknown"])
    result = [
        {
            "id": "r1",
            "from_name": "label",
            "to_name": "image",
            "type": "rectanglelabels",
            "original_width": 128,
            "original_height": 128,
            "value": {"x": 10, "y": 20, "width": 25, "height": 25, "rotation": 0, "rectanglelabels": ["Chromis"]},
        },
        {
            "id": "r2",
            "from_name": "label",
            "to_name": "image",
            "type": "rectanglelabels",
            "value": {"x": 50, "y": 50, "width": 10, "height": 10, "rectanglelabels": ["Unknown"]},
        },
    ]
    answer = client.post(
        "/label-studio/webhook", json=event("ANNOTATION_CREATED", 3, 4, 40, data_uri(drawn_frames[0]), result, config)
    ).json()
    assert answer["status"] == "stored" and answer["changes"][0]["crops"] == 1  # "Unknown" teaches nothing
    with ws.catalog.read() as con:
        box = con.execute(
            "SELECT a.x, a.y, a.w, a.h, a.source_id FROM annotations a JOIN images i USING (image_id) "
            "WHERE i.source = 'label-studio'"
        ).fetchall()
    assert len(box) == 1 and box[0][4] == "project-3/annotation-40/task-4#r1"
    assert box[0][:4] == pytest.approx((12.8, 25.6, 32.0, 32.0))  # 10, 20, 25, 25 % of 128 px


@pytest.mark.parametrize(
    "body, says",
    [
        (
            {
                "action": "ANNOTATION_CREATED",
                "project": 99,
                "task": {"id": 1, "data": {"image": "x"}},
                "annotation": {"id": 5, "result": choice("A")},
            },
            "project 99, which oceanid has not seen",
        ),
        (
            {
                "action": "ANNOTATION_CREATED",
                "project": {"id": 98, "label_config": choices_config(["A"])},
                "task": {"id": 1, "data": {"image": "http://127.0.0.1:9/x.png"}},
                "annotation": {"id": 5, "result": choice("A")},
            },
            "not learned: http://127.0.0.1:9/x.png: cannot fetch",
        ),
        (
            {
                "action": "ANNOTATION_CREATED",
                "project": {"id": 98, "label_config": "<View/>"},
                "task": {"id": 1, "data": {}},
                "annotation": {"id": 5, "result": choice("A")},
            },
            "no <Image",
        ),
        (
            {
                "action": "ANNOTATION_CREATED",
                "project": {"id": 98, "label_config": choices_config(["A", "Unknown"])},
                "task": {"id": 1, "data": {}},
                "annotation": {"id": 5, "result": choice("Unknown")},
            },
            "labels nothing",
        ),
        (
            {
                "action": "ANNOTATION_CREATED",
                "project": 98,
                "task": {"id": 1, "data": {}},
                "annotation": {"id": 5, "was_cancelled": True},
            },
            "skipped",
        ),
        ({"action": "PROJECT_UPDATED", "project": {"id": 98}}, "not an annotation event"),
    ],
)
def test_bad_webhooks_are_ignored_with_one_line(learner, body, says, caplog):
    client, ws = learner
    with caplog.at_level(logging.WARNING, logger=LS_LOG):
        answer = client.post("/label-studio/webhook", json=body)
    assert answer.status_code == 200 and answer.json()["status"] == "ignored" and says in answer.json()["message"]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith(LS_LOG)]
    assert len(lines) == 1 and says in lines[0]
    assert catalog_rows(ws) == []


def test_start_training_is_answered_not_run(learner):
    client, ws = learner
    answer = client.post("/label-studio/webhook", json={"action": "START_TRAINING", "project": {"id": 1}}).json()
    assert answer["status"] == "training" and "oceanid train" in answer["message"]


def test_deleting_an_annotation_never_stored_is_absent(learner):
    client, _ = learner
    answer = client.post(
        "/label-studio/webhook",
        json={"action": "ANNOTATIONS_DELETED", "project": {"id": 1}, "annotations": [{"id": 12345}]},
    ).json()
    assert answer["status"] == "absent"


def test_a_species_removed_from_oceanid_is_never_predicted_again(learner):
    client, ws = learner
    held = crops(ws, split="holdout", limit=1000)
    name = held[0][2]
    examples = [ws.home / p for _, p, c in held if c == name][:5]
    ws.species_add(name, examples)
    config = choices_config([*ws.engine().prototypes.names, "Unknown"])
    tasks = [{"id": n, "data": {"image": data_uri(p)}} for n, p in enumerate(examples)]
    before = client.post("/label-studio/predict", json={"tasks": tasks, "label_config": config, "project": 6}).json()
    assert any(r["result"] and r["result"][0]["value"]["choices"] == [name] for r in before["results"])
    ws.species_remove(name)  # the label stays in the project's config; oceanid no longer knows it
    after = client.post("/label-studio/predict", json={"tasks": tasks, "label_config": config, "project": 6})
    assert after.status_code == 200 and len(after.json()["results"]) == len(tasks)
    assert all(r["result"][0]["value"]["choices"] != [name] for r in after.json()["results"])
    assert after.json()["model_version"] != before["model_version"]


def test_a_store_that_fails_half_way_leaves_nothing_and_can_be_sent_again(learner, monkeypatch):
    client, ws = learner
    ((_, path, concept),) = crops(ws, split="test", limit=1)
    body = event(
        "ANNOTATION_CREATED",
        8,
        1,
        81,
        data_uri(ws.home / path),
        choice(concept),
        choices_config(ws.engine().prototypes.names),
    )
    real = ws.index_build

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ws, "index_build", broken)
    try:  # the server answers 500 with one line; TestClient may re-raise the error instead
        assert client.post("/label-studio/webhook", json=body).status_code == 500
    except OSError:
        pass
    assert catalog_rows(ws) == []  # not left as crops without vectors, which would read as "unchanged"
    monkeypatch.setattr(ws, "index_build", real)
    assert client.post("/label-studio/webhook", json=body).json()["status"] == "stored"


def test_a_correction_is_recalled_while_its_new_generation_is_still_being_built(learner, monkeypatch):
    """Label Studio waits 1 s for a webhook and asks for predictions again at once: the stored crop must
    be recalled from its vector before the index generation that holds it is live (on the old index-based
    recall the crop was not found until the build ended)."""
    client, ws = learner
    species = list(ws.engine().prototypes.names)
    ((_, path, _),) = crops(ws, split="test", limit=1)
    config = choices_config(species)
    image = data_uri(ws.home / path)
    said = client.post(
        "/label-studio/predict", json={"tasks": [{"id": 9, "data": {"image": image}}], "label_config": config}
    ).json()["results"][0]["result"][0]["value"]["choices"][0]
    other = next(s for s in species if s != said)
    seen = []
    real = ws.index_build

    def build_after_a_look(*args, **kwargs):  # what a prediction asked during the build would recall
        from index.imaging import open_image

        seen.append(ws.annotation_recall([open_image(ws.home / path)]))
        return real(*args, **kwargs)

    monkeypatch.setattr(ws, "index_build", build_after_a_look)
    stored = client.post(
        "/label-studio/webhook", json=event("ANNOTATION_CREATED", 1, 9, 90, image, choice(other), config)
    )
    assert stored.json()["status"] == "stored", stored.text
    assert len(seen) == 1 and seen[0][0] is not None
    assert seen[0][0][0] == other and seen[0][0][1] >= 0.97


def setup_version(client, config) -> str:
    answer = client.post("/label-studio/setup", json={"project": "1.1733402325", "schema": config})
    assert answer.status_code == 200, answer.text
    return answer.json()["model_version"]


def test_the_model_version_changes_as_soon_as_a_correction_is_recallable(learner, monkeypatch):
    """Label Studio's "Retrieve predictions" asks /setup for the model version and sends /predict only
    the tasks holding no prediction of that version. The version must change the moment the webhook's
    crop is recallable, while its new index generation is still being built: with ``model@generation``
    alone it stayed the same until the build ended, Label Studio never asked again, and the task kept
    its old answer (bench/RESULTS.md, the Label Studio sections)."""
    client, ws = learner
    species = list(ws.engine().prototypes.names)
    ((_, path, _),) = crops(ws, split="test", limit=1)
    config = choices_config(species)
    image = data_uri(ws.home / path)
    before = setup_version(client, config)
    assert "+tool." not in before  # nothing stored from the tool yet: the version is model@generation
    said = client.post(
        "/label-studio/predict", json={"tasks": [{"id": 4, "data": {"image": image}}], "label_config": config}
    ).json()["results"][0]
    assert said["model_version"] == before
    other = next(s for s in species if s != said["result"][0]["value"]["choices"][0])
    during = []
    real = ws.index_build

    def build_after_a_look(*args, **kwargs):  # Label Studio asking while the new generation is built
        during.append(setup_version(client, config))
        return real(*args, **kwargs)

    monkeypatch.setattr(ws, "index_build", build_after_a_look)
    stored = client.post(
        "/label-studio/webhook", json=event("ANNOTATION_CREATED", 1, 4, 40, image, choice(other), config)
    )
    assert stored.json()["status"] == "stored", stored.text
    assert len(during) == 1 and during[0] != before and "+tool." in during[0]
    assert during[0].split("+")[0] == before  # the generation is still the old one: only the tool's crops changed
    again = client.post(
        "/label-studio/predict", json={"tasks": [{"id": 4, "data": {"image": image}}], "label_config": config}
    ).json()["results"][0]
    assert again["result"][0]["value"]["choices"] == [other] and again["model_version"] == setup_version(client, config)
    unchanged = client.post(
        "/label-studio/webhook", json=event("ANNOTATION_CREATED", 1, 4, 40, image, choice(other), config)
    )
    assert unchanged.json()["status"] == "unchanged" and setup_version(client, config) == again["model_version"]
    relabelled = client.post(
        "/label-studio/webhook",
        json=event("ANNOTATION_UPDATED", 1, 4, 40, image, choice(next(s for s in species if s != other)), config),
    )
    assert relabelled.json()["status"] == "replaced" and setup_version(client, config) != again["model_version"]
    client.post(
        "/label-studio/webhook", json={"action": "ANNOTATIONS_DELETED", "project": 1, "annotations": [{"id": 40}]}
    )
    assert "+tool." not in setup_version(client, config)  # nothing of the tool's left to recall


def test_setup_waits_for_a_webhook_still_storing(learner, monkeypatch):
    """Label Studio stops waiting for a webhook after 1 s and asks for predictions at once, while oceanid is
    still storing the crop: /setup answers the version once the crop is recallable, not the old one."""
    client, ws = learner
    species = list(ws.engine().prototypes.names)
    ((_, path, _),) = crops(ws, split="test", limit=1)
    config = choices_config(species)
    image = data_uri(ws.home / path)
    before = setup_version(client, config)
    began = threading.Event()
    real = ws.annotation_store

    def slow_store(*args, **kwargs):  # a busy machine: the store starts late
        began.set()
        time.sleep(0.4)
        return real(*args, **kwargs)

    monkeypatch.setattr(ws, "annotation_store", slow_store)
    answers = []
    webhook = threading.Thread(
        target=lambda: answers.append(
            client.post(
                "/label-studio/webhook", json=event("ANNOTATION_CREATED", 1, 5, 50, image, choice(species[-1]), config)
            )
        )
    )
    webhook.start()
    try:
        assert began.wait(30)
        asked = setup_version(client, config)
    finally:
        webhook.join(60)
    assert answers and answers[0].json()["status"] == "stored", answers
    assert asked != before and "+tool." in asked


def test_settling_waits_for_pending_webhooks_only_and_is_bounded():
    from app.api.label_studio.routes import Storing

    storing = Storing()
    t0 = time.perf_counter()
    assert storing.settled(seconds=5)  # nothing storing: no wait
    assert time.perf_counter() - t0 < 0.5
    with storing.one() as recallable:
        t0 = time.perf_counter()
        assert not storing.settled(seconds=0.2)  # a stuck store: given up after 0.2 s
        assert 0.2 <= time.perf_counter() - t0 < 2
        threading.Timer(0.2, recallable).start()
        assert storing.settled(seconds=10)  # released by the callback, before the store (its build) ends
        recallable()  # twice: counted once
        assert storing.settled(seconds=0)
    with pytest.raises(OSError), storing.one():  # a store that fails is no longer waited for
        raise OSError("disk full")
    assert storing.settled(seconds=0)
