"""An unknown crop's taxon is measured on held-out species at `index build` and read at load
(issue 30 item 5). On f856aba an unknown crop answered the deepest taxon summed from the KNOWN
species' probabilities ("likely genus X 1.00"), basis-less; the decision stored nothing for it."""

from __future__ import annotations

import dataclasses

import pytest

from app.workspace.pipeline import decide
from index.catalog.decisions import Decision, load_decision, store_decision
from index.metrics.unknown_ranks import BASIS, UnknownRanks
from tests.app.workspace.test_identify import crops


@pytest.fixture
def measuring_ws(tiny_ws, monkeypatch):
    """The tiny workspace decided on its (few) held-out crops, as a real home is."""
    import app.workspace.decisions as decisions_module

    monkeypatch.setattr(decisions_module, "MIN_CHOICE_CROPS", 1)
    assert decide(tiny_ws.catalog, "tiny", force=True)
    tiny_ws.reload()
    return tiny_ws


def held_out_paths(ws):
    return [ws.home / p for _, p, _ in crops(ws, split="holdout", limit=200)]


def test_build_measures_the_placement_on_held_out_species_and_load_reads_it(measuring_ws):
    stored = load_decision(measuring_ws.catalog, "tiny")
    assert isinstance(stored.unknown_ranks, UnknownRanks)
    assert stored.unknown_ranks.n_species >= 1 and stored.unknown_ranks.n_crops > 0
    assert "phylum" in stored.unknown_ranks.right  # the reef's lineages reach the phylum
    assert measuring_ws.engine().unknown_ranks == stored.unknown_ranks
    assert Decision.from_dict(stored.to_dict()) == stored


def test_unknown_crops_are_placed_only_by_held_out_evidence(measuring_ws):
    results = [r for r in measuring_ws.identify(held_out_paths(measuring_ws)) if r.unknown]
    assert results, "the tiny model flags some held-out crops"
    measured = measuring_ws.engine().unknown_ranks
    for r in results:
        assert r.taxon.basis == BASIS
        if r.taxon.name is not None:  # its probability is the measured share of its rank, above the minimum
            assert r.taxon.probability > measured.minimum
            assert r.taxon.probability in [v for v in measured.right[r.taxon.rank] if v is not None]
            assert r.taxon.rank != "species"


def test_no_evidence_no_rank(measuring_ws):
    stored = load_decision(measuring_ws.catalog, "tiny")
    store_decision(measuring_ws.catalog, dataclasses.replace(stored, unknown_ranks=UnknownRanks.empty()))
    measuring_ws.reload()
    results = [r for r in measuring_ws.identify(held_out_paths(measuring_ws)) if r.unknown]
    assert results and all(r.taxon.name is None for r in results)


def test_a_decision_stored_before_the_placement_is_decided_again_at_build(measuring_ws):
    stored = load_decision(measuring_ws.catalog, "tiny")
    old = stored.to_dict()
    old.pop("unknown_ranks")
    store_decision(measuring_ws.catalog, Decision.from_dict(old))
    assert load_decision(measuring_ws.catalog, "tiny").unknown_ranks is None
    assert decide(measuring_ws.catalog, "tiny") is True
    assert load_decision(measuring_ws.catalog, "tiny").unknown_ranks is not None
