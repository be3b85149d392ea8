"""`oceanid discover [list|show|name|export]` as a user meets it (app/cli/discover.py)."""

from __future__ import annotations

import csv
import json
import shlex
from dataclasses import replace

import pytest
import typer
from typer.testing import CliRunner

from app.cli import app
from app.workspace import Workspace
from index.catalog.decisions import load_decision, store_decision

pytest.importorskip("sklearn")
runner = CliRunner()


@pytest.fixture
def strict(tiny_ws):
    """The tiny home under a decision that answers every crop unknown (see tests/app/workspace/test_discover.py);
    returns (home, restore) where ``restore()`` puts the real decision back."""
    real = load_decision(tiny_ws.catalog, "tiny")
    store_decision(tiny_ws.catalog, replace(real, thresholds={**real.thresholds, real.scorer: 2.0}))
    return str(tiny_ws.home), lambda: store_decision(Workspace(tiny_ws.home).catalog, real)


def oc(home: str, *args: str):
    return runner.invoke(app, ["--home", home, *args])


def one_line_error(result) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def test_discover_json_lists_clusters_with_members_and_distances(strict):
    home, _ = strict
    result = oc(home, "discover", "--where", "split=holdout", "--min-cluster-size", "3", "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["unknown"] == run["inputs"] == 49 and len(run["clusters"]) >= 2
    for cluster in run["clusters"]:
        assert isinstance(cluster["id"], int) and len(cluster["members"]) == cluster["size"]
        distances = [m["distance"] for m in cluster["members"]]
        assert all(isinstance(m["crop_id"], int) for m in cluster["members"]) and distances == sorted(distances)
    listed = json.loads(oc(home, "discover", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [run["id"]] and listed[0]["clusters"][0]["members"] == []
    shown = json.loads(oc(home, "discover", "show", str(run["id"]), "--json").stdout)
    assert shown["clusters"] == run["clusters"]
    again = json.loads(oc(home, "discover", "--where", "split=holdout", "--min-cluster-size", "3", "--json").stdout)
    assert again["reused"] and again["clusters"] == run["clusters"]


def test_name_a_cluster_then_export_the_run(strict, tmp_path):
    home, restore = strict
    run = json.loads(oc(home, "discover", "--where", "split=holdout", "--min-cluster-size", "3", "--json").stdout)
    restore()
    cluster = run["clusters"][0]
    result = oc(home, "discover", "name", str(cluster["id"]), "Novus primus", "--exemplars", "2", "--json")
    assert result.exit_code == 0, result.output
    named = json.loads(result.stdout)
    assert named["species"] == "Novus primus" and named["change"]["examples"] == 2
    assert set(named["answered"]) <= {m["crop_id"] for m in cluster["members"]}
    out = tmp_path / "clusters.csv"
    result = oc(home, "discover", "export", str(run["id"]), "--csv", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == sum(c["size"] for c in run["clusters"])
    mine = [r for r in rows if r["cluster"] == str(cluster["id"])]
    assert {r["suggested_taxon"] for r in mine} == {"Novus primus"}
    assert {r["crop_path"] for r in mine} == {m["path"] for m in cluster["members"]}
    check_label_studio_tasks(home, run, cluster, rows, tmp_path)
    text = oc(home, "discover", "show", str(run["id"])).stdout
    assert f"cluster {cluster['id']}" in text and "named Novus primus" in text
    member_lines = [line for line in text.splitlines() if line.startswith("    ")]
    assert len(member_lines) == sum(c["size"] for c in run["clusters"])  # show: every member
    assert sum(line.startswith("    *") for line in member_lines) == sum(len(c["exemplars"]) for c in run["clusters"])


def check_label_studio_tasks(home, run, cluster, rows, tmp_path):
    """`export --label-studio`: Label Studio's import format, checked the way Label Studio and oceanid's own
    backend read it (the e2e test imports the file into the real Label Studio): a task per clustered crop,
    its image a local-files URL naming the crop under the root, and the suggested name a ``choices``
    prediction of the exported label config's control on its ``<Image>``, under the run's model version."""
    from urllib.parse import unquote

    from app.api.label_studio.config import parse_label_config
    from app.api.label_studio.protocol import Task

    out = tmp_path / "review.json"
    result = oc(home, "discover", "export", str(run["id"]), "--label-studio", str(out), "--json")
    assert result.exit_code == 0, result.output
    said = json.loads(result.stdout)
    tasks = json.loads(out.read_text())
    config = parse_label_config((tmp_path / "review.label-config.xml").read_text())
    assert isinstance(tasks, list) and len(tasks) == said["tasks"] == len(rows)
    (control,) = config.controls
    assert control.kind == "choices" and control.fallback() == "Unknown"
    key = config.image_key(control.to_name)
    suggested = {r["crop_id"]: r["suggested_taxon"] for r in rows}  # the CSV's suggestion, per crop
    paths = {r["crop_id"]: r["crop_path"] for r in rows}
    predicted = 0
    for task in tasks:
        assert set(task) <= {"data", "predictions"}
        data = task["data"]
        ref = Task.model_validate(task).image_ref(key)
        assert (
            ref.startswith("/data/local-files/?d=")
            and "/" + unquote(ref.split("?d=", 1)[1]) == paths[str(data["crop_id"])]
        )
        assert data["discovery"] == run["id"] and isinstance(data["exemplar"], bool)
        name = suggested[str(data["crop_id"])]
        if not name:
            assert "predictions" not in task
            continue
        predicted += 1
        (prediction,) = task["predictions"]
        assert prediction["model_version"].startswith(f"discovery-{run['id']} (tiny@")
        (region,) = prediction["result"]
        assert region == {"from_name": control.name, "to_name": control.to_name, "type": "choices",
                          "value": {"choices": [name]}}  # fmt: skip
        assert name in control.labels
    assert said["predicted"] == predicted >= cluster["size"]  # the named cluster's crops at least
    assert {t["data"]["cluster"] for t in tasks} == {c["id"] for c in run["clusters"]}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    refused = oc(
        home, "discover", "export", str(run["id"]), "--label-studio", str(out), "--label-studio-root", str(outside)
    )
    assert "is not under" in one_line_error(refused)


@pytest.mark.parametrize(
    "args,words",
    [
        (["discover", "name", "999", "Nullus nihil"], "no discovered cluster 999"),
        (["discover", "show", "999"], "no discovery run 999"),
        (["discover", "export", "999", "--csv", "x.csv"], "no discovery run 999"),
        (["discover", "--space", "general"], "one vector space"),
        (["discover", "--space", "elsewhere"], "unknown space"),
        (["discover", "--where", "speciez=x"], "speciez"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(args, words, tiny_ws, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = oc(str(tiny_ws.home), *args)
    assert result.exit_code == 1
    assert words in one_line_error(result)


def test_an_empty_or_foreign_selection_is_one_line_and_exit_1(strict):
    home, restore = strict
    run = json.loads(oc(home, "discover", "--where", "split=holdout", "--min-cluster-size", "3", "--json").stdout)
    restore()
    cid = str(run["clusters"][0]["id"])
    assert "no crops selected" in one_line_error(oc(home, "discover", "name", cid, "Nullus nihil", "--crops", ""))
    assert "not a member" in one_line_error(oc(home, "discover", "name", cid, "Nullus nihil", "--crops", "99999"))
    assert oc(home, "discover", "name", cid, "Nullus nihil", "--exemplars", "0").exit_code == 2  # a usage error
    assert oc(home, "discover", "export", str(run["id"])).exit_code == 2  # --csv or --label-studio is required


def test_discover_in_a_folder_of_images(strict, tmp_path):
    import shutil

    home, _ = strict
    crops = sorted((tmp_path.parent / "ws" / "crops").rglob("*.png")) or sorted(
        p for p in (Workspace(home).home / "crops").rglob("*.png")
    )
    folder = tmp_path / "dive"
    folder.mkdir()
    for n, path in enumerate(crops[:30]):
        shutil.copy(path, folder / f"{n:02d}.png")
    result = oc(home, "discover", "--images", str(folder), "--min-cluster-size", "3", "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["inputs"] == 30 and run["params"]["images"] is True
    for cluster in run["clusters"]:
        assert all("crop_id" not in m and m["path"].startswith(str(folder)) for m in cluster["members"])
    assert "no image files" in one_line_error(oc(home, "discover", "--images", str(tmp_path / "empty-nothing")))


def test_every_discover_help_example_runs_in_order(strict, tmp_path, monkeypatch):
    """The examples of `discover`, `list`, `show`, `name`, `export`, run one after another on the tiny home
    (tests/app/cli/test_cli_walk.py leaves them to this test: they need a run with clusters first)."""
    home, restore = strict
    monkeypatch.chdir(tmp_path)
    group = typer.main.get_command(app).commands["discover"]
    examples = [group.help] + [group.commands[n].help for n in ("list", "show", "name", "export")]
    for n, text in enumerate(examples):
        line = next(x for x in text.splitlines() if "Example:" in x).split("Example:", 1)[1].strip()
        if n == 3:
            restore()  # name under the real decision
        result = oc(home, *shlex.split(line)[1:])
        assert result.exit_code == 0, (line, result.output)
    assert (tmp_path / "clusters.csv").stat().st_size > 0


def readme_commands() -> list[str]:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = text.split("## Discover new species", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip().startswith("oceanid")]


def test_the_readme_workflow_runs(strict, tmp_path, monkeypatch):
    """README "Discover new species": every command, in order, on the tiny home (the first under the
    all-unknown decision, so cluster 1 exists; `name` under the real one)."""
    import shutil

    home, restore = strict
    monkeypatch.chdir(tmp_path)
    (tmp_path / "new_dive").mkdir()
    for n, crop in enumerate(sorted((Workspace(home).home / "crops").rglob("*.png"))[:12]):
        shutil.copy(crop, tmp_path / "new_dive" / f"{n}.png")
    lines = readme_commands()
    assert len(lines) == 8
    for line in lines:
        args = shlex.split(line.split(">")[0])[1:]
        if args[:2] == ["discover", "name"]:
            restore()
        result = oc(home, *args)
        assert result.exit_code == 0, (line, result.output)
    assert (tmp_path / "clusters.csv").stat().st_size > 0
    assert json.loads((tmp_path / "review.json").read_text()) and (tmp_path / "review.label-config.xml").exists()


def test_without_scikit_learn_discover_says_which_extra_to_install(tiny_ws, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)  # as in the serving install (no oceanid[train])
    line = one_line_error(oc(str(tiny_ws.home), "discover"))
    assert "scikit-learn" in line and "pip install 'oceanid[train]'" in line
