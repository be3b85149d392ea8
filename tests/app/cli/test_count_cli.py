"""Issue 31 item 3: `oceanid count` (raw and adjusted counts per taxon), the stored count confusion,
and evaluate's count error, on the tiny trained workspace."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from collections import Counter

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.workspace import Workspace
from app.workspace.counting import count_error
from index.metrics.counts import CountConfusion

runner = CliRunner()


@pytest.fixture
def home(tiny_home, tmp_path):
    shutil.copytree(tiny_home, tmp_path / "home")
    return tmp_path / "home"


def run(home, *args):
    return runner.invoke(app, ["--home", str(home), *args])


def test_index_build_stores_the_validation_confusion_counts_are_adjusted_with(tiny_home):
    ws = Workspace(tiny_home)
    engine = ws.engine()
    confusion = engine.decision.counts
    assert confusion is not None
    with ws.catalog.read() as con:
        val = con.execute("SELECT count(*) FROM annotations WHERE split = 'val'").fetchone()[0]
    rows = dict(zip(confusion.classes, confusion.matrix().sum(axis=1), strict=True))
    known = sum(n for c, n in rows.items() if c != "unknown")
    assert known == val and set(confusion.outcomes) == {*engine.prototypes.names, "unknown"}


def test_count_where_adds_up_and_matches_identify_on_the_same_crops(home, tmp_path):
    result = run(home, "count", "--where", "split=test", "--json")
    assert result.exit_code == 0, result.output
    counted = json.loads(result.stdout)
    with Workspace(home).catalog.read() as con:
        crops = [home / p for (p,) in con.execute("SELECT crop_path FROM annotations WHERE split = 'test'").fetchall()]
    assert counted["crops"] == len(crops) > 0
    raw = {t["taxon"]: t["raw"] for t in counted["taxa"]} | {"unknown": counted["unknown"]["raw"]}
    oracle = Counter("unknown" if r.unknown else r.species for r in Workspace(home).identify(crops))
    assert {k: v for k, v in raw.items() if v} == dict(oracle)  # the stored vectors answer as identify does
    adjusted = [t["adjusted"] for t in counted["taxa"]] + [counted["unknown"]["adjusted"] or 0]
    assert sum(adjusted) == pytest.approx(len(crops), abs=1e-6)
    for t in counted["taxa"]:
        assert t["low"] <= t["adjusted"] + 1e-9 and t["adjusted"] <= t["high"] + 1e-9
    assert counted["adjusted_with"].startswith("the validation confusion")


def test_count_images_counts_identifys_answers_and_writes_a_csv(home, tmp_path):
    crops = sorted((home / "crops").rglob("*.png"))[:12]
    folder = tmp_path / "dive"
    folder.mkdir()
    for n, c in enumerate(crops):
        shutil.copy(c, folder / f"{n}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "counts.csv"
    result = run(home, "count", str(folder), "--csv", str(out), "--json")
    assert result.exit_code == 0, result.output
    counted = json.loads(result.stdout)
    assert counted["crops"] == 12 and counted["unreadable"] == 1
    oracle = Counter("unknown" if r.unknown else r.species for r in Workspace(home).identify(crops))
    raw = {t["taxon"]: t["raw"] for t in counted["taxa"] if t["raw"]} | (
        {"unknown": counted["unknown"]["raw"]} if counted["unknown"]["raw"] else {}
    )
    assert raw == dict(oracle)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows[-1]["taxon"] == "unknown" and sum(int(r["raw"]) for r in rows) == 12
    table = run(home, "count", str(folder))
    assert table.exit_code == 0 and "adjusted" in table.output and "12 crops counted" in table.output


@pytest.mark.parametrize(
    "args,words",
    [
        (["count"], "no image files"),
        (["count", "x.png", "--where", "split=test"], "not both"),
        (["count", "--where", "splt=test"], "splt"),
    ],
)
def test_count_mistakes_are_one_line(home, args, words):
    result = run(home, *args)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert words in result.output


def test_a_decision_from_before_counts_gets_them_at_the_next_index_build(home):
    from index.catalog.decisions import load_decision, store_decision

    ws = Workspace(home)
    model = ws.engine().model_id
    store_decision(ws.catalog, dataclasses.replace(load_decision(ws.catalog, model), counts=None))
    before = run(home, "count", "--where", "split=test", "--json")
    assert json.loads(before.stdout)["adjusted_with"] is None  # raw only, and said
    assert any("index build" in n for n in json.loads(before.stdout)["notes"])
    assert run(home, "index", "build").exit_code == 0
    assert load_decision(Workspace(home).catalog, model).counts is not None


def test_evaluate_reports_raw_and_adjusted_count_error(home, monkeypatch):
    assert Workspace(home).last_evaluation().count_error.min_crops == 20  # the fixture's own evaluate
    monkeypatch.setattr("app.workspace.counting.MIN_GRADED", 2)  # the tiny split has no class of 20 test crops
    result = run(home, "evaluate", "--json")
    assert result.exit_code == 0, result.output
    e = json.loads(result.stdout)["count_error"]
    counted = Workspace(home).count(where="split=test")  # the same answers, the same stored confusion
    raw = {t.taxon: t.raw for t in counted.taxa}
    adjusted = {t.taxon: t.adjusted for t in counted.taxa}
    assert e["classes"] == len(e["per_class"]) > 0
    for name, c in e["per_class"].items():
        assert c["truth"] >= 2 and c["raw"] == raw.get(name, 0)
        assert c["raw_error"] == pytest.approx(abs(c["raw"] - c["truth"]) / c["truth"])
        assert c["adjusted"] == pytest.approx(adjusted.get(name, 0.0), abs=1e-6)
    assert e["raw"] == pytest.approx(sum(c["raw_error"] for c in e["per_class"].values()) / e["classes"])
    text = run(home, "evaluate")
    assert "count error per class" in text.output and f"raw {e['raw']:.3f}" in text.output
    assert "Counts per class" in (home / "reports" / "latest" / "summary.md").read_text()


def test_count_error_on_a_hand_made_case():
    conf = CountConfusion(("a", "b"), ("a", "b", "unknown"), ((8, 2, 0), (0, 10, 0)))  # a is answered b 20%
    truth = ["a"] * 50 + ["b"] * 20 + ["c"] * 3
    answers = ["a"] * 40 + ["b"] * 10 + ["b"] * 20 + ["unknown"] * 3
    e = count_error(truth, answers, conf)
    assert e.classes == 2  # c has fewer than 20 crops: not graded
    assert e.per_class["a"].raw_error == pytest.approx(0.2) and e.per_class["b"].raw_error == pytest.approx(0.5)
    assert e.per_class["a"].adjusted == pytest.approx(50 + 3 * 50 / 70, abs=2)  # the 3 unknowns spread
    assert e.adjusted < e.raw


PROBE = """
import json, sys
from app.cli import main
sys.argv = ["oceanid", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("PROBE" + json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


@pytest.mark.parametrize("where", [False, True])
def test_count_runs_on_the_serving_install(tiny_home, where):
    """`count` sits beside `identify` on the query path: no scipy (the serving install has none), no torch."""
    import subprocess
    import sys

    crop = next(iter(sorted((tiny_home / "crops").rglob("*.png"))))
    args = ["--home", str(tiny_home), "count", *(["--where", "split=test"] if where else [str(crop)]), "--json"]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, timeout=120)
    probe = json.loads([ln for ln in done.stdout.splitlines() if ln.startswith("PROBE")][-1][5:])
    assert probe["code"] == 0, done.stderr[-2000:]
    loaded = set(probe["modules"])
    assert not loaded & {"scipy", "sklearn", "torch", "matplotlib", "streamlit"}, sorted(loaded)


def test_species_add_stores_the_confusion_with_the_added_species(home):
    from app.workspace.counting import added_confusion_file

    ws = Workspace(home)
    with ws.catalog.read() as con:
        sql = "SELECT concept, crop_path FROM annotations WHERE split = 'holdout' ORDER BY 1, 2"
        held = con.execute(sql).fetchall()
    species = held[0][0]
    examples = [home / p for c, p in held if c == species][:4]
    added = run(home, "species", "add", "Addita nova", *map(str, examples))
    assert added.exit_code == 0, added.output
    engine = Workspace(home).engine()
    stored = added_confusion_file(Workspace(home).paths, engine.model_id, engine.prototypes)
    assert stored.is_file()
    counted = json.loads(run(home, "count", "--where", f'species="{species}"', "--json").stdout)
    named = {t["taxon"]: t for t in counted["taxa"]}
    assert "Addita nova" in named and named["Addita nova"]["adjusted"] is not None  # adjusted, not apart
    assert not any("added after the decision" in n for n in counted["notes"])
    assert any("no validation crop of Addita nova" in n for n in counted["notes"])  # its row is assumed
    stored.unlink()  # a home whose species were added before counts: the next index build stores it
    assert run(home, "index", "build").exit_code == 0 and stored.is_file()
    assert run(home, "species", "remove", "Addita nova").exit_code == 0
    after = json.loads(run(home, "count", "--where", "split=test", "--json").stdout)
    assert "Addita nova" not in {t["taxon"] for t in after["taxa"]} and after["adjusted_with"]
