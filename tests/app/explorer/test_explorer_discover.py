"""The explorer's Discover page (app/explorer/pages_discover.py) under Streamlit's AppTest, on the tiny workspace."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("sklearn")
from streamlit.testing.v1 import AppTest  # noqa: E402

from app.workspace import Workspace  # noqa: E402
from index.catalog.decisions import load_decision, store_decision  # noqa: E402

MAIN = Path(__file__).resolve().parents[3] / "app" / "explorer" / "main.py"
TIMEOUT = 60


def start(home: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("OCEANID_HOME", str(home))
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.session_state["page"] = "Discover"
    return at.run()


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def held_out_run(home: Path):
    """A stored discovery of the held-out crops (under a decision answering every crop unknown: see
    tests/app/workspace/test_discover.py), the real decision restored afterwards."""
    ws = Workspace(home)
    real = load_decision(ws.catalog, "tiny")
    store_decision(ws.catalog, replace(real, thresholds={**real.thresholds, real.scorer: 2.0}))
    run = ws.discovery().run(where="split=holdout", min_cluster_size=3)
    store_decision(ws.catalog, real)
    return run


def test_the_page_offers_to_discover_when_nothing_was(tiny_ws, monkeypatch):
    at = start(tiny_ws.home, monkeypatch)
    ok(at)
    assert at.header[0].value == "Discover"
    assert "No discovery yet" in at.info[0].value
    at.button[0].click().run()  # Discover, with the page's defaults, on the real decision
    ok(at)
    (run,) = Workspace(tiny_ws.home).discovery().list()
    assert any(f"run {run.id}" in o for o in at.selectbox[0].options)


def test_each_cluster_is_a_gallery_with_its_facts(tiny_ws, monkeypatch):
    run = held_out_run(tiny_ws.home)
    at = start(tiny_ws.home, monkeypatch)
    ok(at)
    assert [s.value for s in at.subheader] == [f"Cluster {c.id} (#{c.number})" for c in run.clusters]
    facts = "\n".join(m.value for m in at.markdown)
    for cluster in run.clusters:
        assert f"**{cluster.size}** crops" in facts and cluster.facts.nearest_species in facts
    first = run.clusters[0]
    split = at.multiselect(key=f"split_{first.id}")
    assert len(split.options) == first.size and split.options[0].endswith("exemplar")


def test_split_off_a_crop_then_name_the_cluster(tiny_ws, monkeypatch):
    run = held_out_run(tiny_ws.home)
    first = run.clusters[0]
    at = start(tiny_ws.home, monkeypatch)
    ok(at)
    odd = at.multiselect(key=f"split_{first.id}")
    odd.select(odd.options[0])  # the nearest exemplar does not belong
    at.text_input(key=f"species_{first.id}").input("Discoverus primus")
    at.button(key=f"FormSubmitter:name_{first.id}-Name it (add species)").click().run()
    ok(at)
    assert "Added **Discoverus primus**" in at.success[0].value
    ws = Workspace(tiny_ws.home)
    assert "Discoverus primus" in ws.engine().prototypes.names
    (naming,) = ws.discovery().cluster(first.id).names
    kept = [m.crop_id for m in first.exemplars[1:]]  # the first option: the first exemplar, split off
    assert naming.payload["examples"] == kept and first.exemplars[0].crop_id not in naming.payload["examples"]
