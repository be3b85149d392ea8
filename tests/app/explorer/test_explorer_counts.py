"""Issue 31 items 3 and 4 in the explorer (AppTest): the Counts page, and the Data page's class folders
with a lineage file."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from app.workspace import Workspace  # noqa: E402

MAIN = Path(__file__).resolve().parents[3] / "app" / "explorer" / "main.py"
TIMEOUT = 60


def start(home: Path, monkeypatch: pytest.MonkeyPatch, page: str) -> AppTest:
    monkeypatch.setenv("OCEANID_HOME", str(home))
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.session_state["page"] = page
    return at.run()


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_counts_page_shows_what_count_says_for_a_filter(tiny_home, monkeypatch):
    expected = Workspace(tiny_home).count(where="split=test")
    at = start(tiny_home, monkeypatch, "Counts")
    ok(at)
    assert at.header[0].value == "Counts"
    table = at.dataframe[0].value
    assert dict(zip(table["taxon"], table["raw"], strict=True)) == {
        **{t.taxon: t.raw for t in expected.taxa},
        "unknown": expected.unknown.raw,
    }
    shown = dict(zip(table["taxon"], table["adjusted"], strict=True))
    for t in expected.taxa:
        assert shown[t.taxon] == pytest.approx(t.adjusted)
    assert {m.label: m.value for m in at.metric}["crops counted"] == f"{expected.crops:,}"


def test_counts_page_counts_uploads_as_identify_answers_them(tiny_home, monkeypatch):
    crops = sorted((tiny_home / "crops").rglob("*.png"))[:6]
    at = start(tiny_home, monkeypatch, "Counts")
    at.radio(key="count_source").set_value("Uploaded crops").run()
    at.get("file_uploader")[0].set_value([(f"{n}.png", c.read_bytes(), "image/png") for n, c in enumerate(crops)])
    at.run()
    ok(at)
    table = at.dataframe[0].value
    oracle = Counter("unknown" if r.unknown else r.species for r in Workspace(tiny_home).identify(crops))
    assert {t: r for t, r in zip(table["taxon"], table["raw"], strict=True) if r} == dict(oracle)


def test_counts_page_a_bad_filter_is_one_message(tiny_home, monkeypatch):
    at = start(tiny_home, monkeypatch, "Counts")
    at.text_input(key="count_where").set_value("splt=test").run()
    assert not at.exception and len(at.error) == 1 and "splt" in at.error[0].value


def test_data_page_adds_class_folders_with_an_uploaded_lineage_file(tiny_ws, class_folders, monkeypatch):
    home = tiny_ws.home
    before = Workspace(home).stats().crops
    at = start(home, monkeypatch, "Data")
    ok(at)
    at.text_input(key="data_folder").set_value(str(class_folders))
    lineages = b"concept,phylum,family\nalpha,Chordata,Alphidae\n"
    at.get("file_uploader")[0].set_value(("plankton.csv", lineages, "text/csv"))
    at.button[0].click().run()
    ok(at)
    said = " ".join(s.value for s in at.success)
    assert "1 of 3 classes named" in said and "beta, gamma" in said
    assert Workspace(home).stats().crops == before + 24
    assert Workspace(home).taxa_show("alpha").as_dict()["family"] == "Alphidae"


def test_data_page_a_bad_lineage_file_is_one_message_and_ingests_nothing(tiny_ws, class_folders, monkeypatch):
    home = tiny_ws.home
    before = Workspace(home).stats().crops
    at = start(home, monkeypatch, "Data")
    at.text_input(key="data_folder").set_value(str(class_folders))
    at.get("file_uploader")[0].set_value(("bad.csv", b"folder,phylum\nalpha,Chordata\n", "text/csv"))
    at.button[0].click().run()
    assert not at.exception and len(at.error) == 1 and "concept column" in at.error[0].value
    assert Workspace(home).stats().crops == before


def test_data_page_imports_a_lineage_file_for_the_classes_already_there(tiny_ws, monkeypatch):
    home = tiny_ws.home
    name = Workspace(home).engine().prototypes.names[0]
    at = start(home, monkeypatch, "Data")
    at.get("file_uploader")[0].set_value(("l.csv", f"concept,family\n{name},Fictidae\n".encode(), "text/csv"))
    at.button[0].click().run()
    ok(at)
    assert "taxa written" in " ".join(s.value for s in at.success)
    assert json.dumps(Workspace(home).taxa_show(name).as_dict()).count("Fictidae") == 1
