"""The table's detail column says truthfully how a score compares with its threshold, and why a crop under
the threshold was still named (the two-space rule's second stage accepted it as an added species)."""

from __future__ import annotations

from app.cli.answers import answer_cells
from app.workspace.identification import Identification, OodVerdict


def _answer(score: float, unknown: bool, named_by: str = "fused") -> Identification:
    top = [("Pentastra rubra", 0.9), ("Cancrella rufa", 0.5)]
    verdict = OodVerdict(score=score, threshold=-55.0, unknown=unknown)
    return Identification.answered("a.png", top, top, {"mahalanobis": verdict}, "mahalanobis", named_by=named_by)


def test_a_crop_named_under_its_threshold_says_an_added_species_scorer_accepted_it():
    # would fail: the comparison drawn from `unknown` (it printed "-89.00 ≥ -55.00" for such a crop)
    second = _answer(-89.0, unknown=False)
    assert second.accepted_as_added
    _, _, detail = answer_cells(second)
    assert "-89.00 < -55.00" in detail and "accepted by Pentastra rubra's few-shot scorer" in detail


def test_crops_decided_by_their_threshold_say_so_without_the_note():
    named, unknown = _answer(-40.0, unknown=False), _answer(-89.0, unknown=True, named_by="")
    assert not named.accepted_as_added and not unknown.accepted_as_added
    assert "-40.00 ≥ -55.00" in answer_cells(named)[2] and "accepted" not in answer_cells(named)[2]
    assert "-89.00 < -55.00" in answer_cells(unknown)[2] and "accepted" not in answer_cells(unknown)[2]
