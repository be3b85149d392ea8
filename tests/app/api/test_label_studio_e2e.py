"""oceanid as the ML backend of a REAL Label Studio (1.23.2, its own cached virtualenv under build/),
both started offline on free loopback ports: predictions stored by Label Studio, and an annotation made
in Label Studio reaching oceanid's catalog and the next prediction.

Label Studio runs with its prediction validation on (a feature flag, off by default in 1.23.2): every
prediction it stores, from the backend or imported, is checked against the project's label config.

Opt-in (``-m label_studio``; ``.ci/run`` runs it after ``make test``). The first run installs Label
Studio into ``build/label-studio-venv`` (``$OCEANID_LABEL_STUDIO_VENV``), later runs reuse it.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from bench.label_studio_harness import DEFAULT_VENV, LabelStudio, OceanidServer, ensure_venv, free_port
from index.errors import CatalogBusy

pytestmark = pytest.mark.label_studio

TOKEN = "e2e-oceanid-token"
CHOICES = (
    '<View><Image name="image" value="$image"/><Choices name="species" toName="image" choice="single">'
    "{}</Choices></View>"
)
RECTANGLES = (
    '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
    '<Label value="Unknown"/>{}</RectangleLabels></View>'
)


def image_of(task: dict) -> str:
    """A task's image URL (uploaded files may sit under Label Studio's ``$undefined$`` key)."""
    return task["data"].get("image") or next(iter(task["data"].values()))


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def show_logs(request, ls, oceanid) -> None:
    """Both servers' log tails on the terminal (shown even though the output is captured)."""
    writer = request.config.pluginmanager.get_plugin("terminalreporter")
    text = "--- Label Studio log (tail) ---\n" + ls.tail() + "\n--- oceanid log (tail) ---\n" + oceanid.tail()
    (writer.write_line if writer else print)(text)


@pytest.fixture(scope="module")
def servers(request, tiny_home, drawn_detector, tmp_path_factory):
    """(Label Studio, oceanid serve, home) running; stopped by their PIDs; both logs' tails are
    printed when a test of this module failed (pytest shows them with the failure)."""
    base = tmp_path_factory.mktemp("ls-e2e")
    home = base / "home"
    shutil.copytree(tiny_home, home)
    shutil.copytree(drawn_detector, home / "models" / drawn_detector.name)
    from app.workspace import Workspace
    from app.workspace.demo import register_frame_detector

    register_frame_detector(Workspace(home), home / "models" / drawn_detector.name)  # the current detector
    exe = ensure_venv(Path(os.environ.get("OCEANID_LABEL_STUDIO_VENV") or DEFAULT_VENV))
    failed_before = request.session.testsfailed
    settings = {  # local files under base (discover export's tasks); predictions checked against the config
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(base),
        "fflag_feat_utc_210_prediction_validation_15082025": "true",
    }
    ls = LabelStudio(exe, base / "ls-data", free_port(), env=settings)
    oceanid = OceanidServer(home, free_port(), base / "oceanid.log", TOKEN, ls)
    try:
        ls.up()
        oceanid.up()
        yield ls, oceanid, home
        if request.session.testsfailed > failed_before:
            show_logs(request, ls, oceanid)
    except BaseException:
        show_logs(request, ls, oceanid)
        raise
    finally:
        oceanid.stop()
        ls.stop()


def test_choices_predictions_stored_by_label_studio(servers, tmp_path):
    from app.workspace import Workspace

    ls, oceanid, home = servers
    ws = Workspace(home)
    species = list(ws.engine().prototypes.names)
    with ws.catalog.read() as con:
        rows = con.execute(
            "SELECT crop_path, concept FROM annotations WHERE split = 'test' ORDER BY annotation_id LIMIT 12"
        ).fetchall()
    files = []
    for n, (path, _) in enumerate(rows):
        files.append(tmp_path / f"crop{n:02d}.png")
        shutil.copy(home / path, files[-1])
    labels = "".join(f'<Choice value="{s}"/>' for s in species) + '<Choice value="Unknown"/>'
    project = ls.create_project("reef crops", CHOICES.format(labels))
    ls.import_files(project, files)
    tasks = ls.tasks(project)
    assert len(tasks) == len(files)
    ls.connect_backend(project, f"{oceanid.url}/label-studio", TOKEN)
    ls.retrieve_predictions(project)
    stored = {p["task"]: p for p in ls.predictions(project)}
    assert set(stored) == {t["id"] for t in tasks}, "every task has a prediction"
    oracle = {f.name: a for f, a in zip(files, ws.identify(files, k=3), strict=True)}
    right = 0
    for task in tasks:
        name = next(f.name for f in files if image_of(task).endswith(f.name))
        answer = oracle[name]
        said = [r["value"]["choices"] for r in stored[task["id"]]["result"]]
        assert said == [["Unknown" if answer.unknown else answer.species]], (name, said)
        right += said == [[rows[files.index(next(f for f in files if f.name == name))][1]]]
        assert stored[task["id"]]["model_version"].startswith("tiny@gen-")
    assert right >= len(files) // 2, f"{right} of {len(files)} crops named right"


def test_rectangle_predictions_overlap_the_drawn_organisms(servers, tmp_path):
    from conftest import drawn_frame

    ls, oceanid, _ = servers
    rng, frames = np.random.default_rng(7), []
    for n in range(6):  # frames like the drawn detector's, not the ones it was trained on, with their truth
        image, boxes = drawn_frame(rng)
        image.save(tmp_path / f"frame{n}.png")
        frames.append((tmp_path / f"frame{n}.png", [tuple(map(float, b)) for b in boxes]))
    project = ls.create_project("reef frames", RECTANGLES.format('<Label value="Disc"/>'))
    ls.import_files(project, [f for f, _ in frames])
    ls.connect_backend(project, f"{oceanid.url}/label-studio", TOKEN)
    ls.retrieve_predictions(project)
    stored = {p["task"]: p for p in ls.predictions(project)}
    tasks = ls.tasks(project)
    assert set(stored) == {t["id"] for t in tasks}
    hits = total = 0
    for task in tasks:
        truth = next(b for f, b in frames if image_of(task).endswith(f.name))
        boxes = []
        for region in stored[task["id"]]["result"]:
            v, w, h = region["value"], region["original_width"], region["original_height"]
            boxes.append((v["x"] * w / 100, v["y"] * h / 100, v["width"] * w / 100, v["height"] * h / 100))
        total += len(truth)
        hits += sum(1 for t in truth if boxes and max(iou(t, b) for b in boxes) >= 0.5)
    assert hits / total >= 0.8, f"{hits} of {total} drawn organisms found at IoU >= 0.5"


def test_an_annotation_made_in_label_studio_reaches_the_catalog_and_the_next_prediction(servers, tmp_path):
    from app.workspace import Workspace

    ls, oceanid, home = servers
    ws = Workspace(home)
    species = list(ws.engine().prototypes.names)
    with ws.catalog.read() as con:
        (path,) = con.execute(
            "SELECT crop_path FROM annotations WHERE split = 'test' ORDER BY annotation_id DESC LIMIT 1"
        ).fetchone()
    shutil.copy(home / path, tmp_path / "to-correct.png")
    labels = "".join(f'<Choice value="{s}"/>' for s in species) + '<Choice value="Unknown"/>'
    project = ls.create_project("corrections", CHOICES.format(labels))
    ls.import_files(project, [tmp_path / "to-correct.png"])
    (task,) = ls.tasks(project)
    ls.connect_backend(project, f"{oceanid.url}/label-studio", TOKEN)
    ls.retrieve_predictions(project)
    (first,) = ls.predictions(project)
    said = first["result"][0]["value"]["choices"][0] if first["result"] else None
    corrected = next(s for s in species if s != said)
    ls.add_webhook(project, f"{oceanid.url}/label-studio/webhook", TOKEN)
    annotation = ls.annotate(
        task["id"], [{"from_name": "species", "to_name": "image", "type": "choices", "value": {"choices": [corrected]}}]
    )
    # at once, as a lab does: Label Studio waited at most 1 s for the webhook and oceanid may still be building
    # the new index generation; "Retrieve predictions" must ask the backend again and get the correction
    ls.retrieve_predictions(project)
    latest = max(ls.predictions(project), key=lambda p: p["id"])
    assert latest["id"] != first["id"], "Label Studio asked the backend again (the model version changed)"
    assert latest["result"][0]["value"]["choices"] == [corrected]
    assert latest["model_version"] != first["model_version"] and "+tool." in latest["model_version"]
    assert np.isclose(latest["result"][0]["score"], 1.0, atol=0.03)
    key = f"project-{project}/annotation-{annotation}/task-{task['id']}"
    deadline, row = time.time() + 120, None
    while time.time() < deadline and row is None:
        try:
            with ws.catalog.read() as con:
                row = con.execute(
                    "SELECT a.concept FROM annotations a JOIN images i USING (image_id) "
                    "WHERE i.source = 'label-studio' AND i.source_id = ?",
                    [key],
                ).fetchone()
        except CatalogBusy:  # the server is writing (its new generation)
            time.sleep(0.5)
    assert row == (corrected,), "the annotation became a truth crop of the corrected species"


def test_discover_export_tasks_import_with_their_predictions(servers, tiny_home):
    """`discover export --label-studio`: the tasks import into Label Studio (which validates each prediction
    against the exported label config), each crop's suggested name is the stored prediction under the run's
    model version, the images are served by Label Studio's local-files storage, and the same URLs reach
    oceanid's backend (every task gets a prediction of its own)."""
    import json
    from dataclasses import replace
    from urllib.parse import unquote

    from typer.testing import CliRunner

    from app.cli import app
    from app.workspace import Workspace
    from index.catalog.decisions import load_decision, store_decision

    ls, oceanid, served = servers
    base = served.parent  # Label Studio's local-files document root
    home = base / "discover-home"
    shutil.copytree(tiny_home, home)
    ws = Workspace(home)
    real = load_decision(ws.catalog, "tiny")
    store_decision(ws.catalog, replace(real, thresholds={**real.thresholds, real.scorer: 2.0}))  # all unknown
    run = ws.discovery().run(where="split=holdout", min_cluster_size=3)
    store_decision(ws.catalog, real)
    named = run.clusters[0]
    Workspace(home).discovery().name(named.id, "Novus primus", exemplars=2)
    out = base / "review.json"
    cli = CliRunner().invoke(
        app,
        ["--home", str(home), "discover", "export", str(run.id), "--label-studio", str(out)]
        + ["--label-studio-root", str(base), "--json"],
    )
    assert cli.exit_code == 0, cli.output
    said = json.loads(cli.stdout)
    tasks = json.loads(out.read_text())
    config = (base / "review.label-config.xml").read_text()
    assert len(tasks) == said["tasks"] == run.clustered and said["predicted"] >= named.size
    project = ls.create_project("discovery review", config)
    ls.add_local_storage(project, home)
    ls.import_tasks(project, tasks)
    stored_tasks = ls.tasks(project)
    assert len(stored_tasks) == len(tasks)
    by_crop = {t["data"]["crop_id"]: t for t in stored_tasks}
    predictions = {p["task"]: p for p in ls.predictions(project)}
    assert len(predictions) == said["predicted"]
    for cluster in run.clusters:
        for m in cluster.members:
            task = by_crop[m.crop_id]
            assert task["data"]["cluster"] == cluster.id
            assert Path(base, unquote(task["data"]["image"].split("?d=", 1)[1])) == Path(m.path)
            if cluster.id == named.id:
                p = predictions[task["id"]]
                assert p["result"][0]["value"]["choices"] == ["Novus primus"]
                assert p["model_version"].startswith(f"discovery-{run.id} ")
    one = by_crop[named.members[0].crop_id]["data"]["image"]
    assert ls.session.get(ls.url + one, timeout=30).content == Path(named.members[0].path).read_bytes()
    ls.connect_backend(project, f"{oceanid.url}/label-studio", TOKEN)
    ls.retrieve_predictions(project)
    mine = [p for p in ls.predictions(project) if p["model_version"].startswith("tiny@")]
    assert {p["task"] for p in mine} == {t["id"] for t in stored_tasks}
    assert all(p["result"] for p in mine), "oceanid fetched every exported image from Label Studio"
