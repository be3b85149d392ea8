"""What a drawn box (and the explorer's whole-frame picker) calls an organism (issue 30 item 5):
an unknown one shows its unknown score against the threshold, never "closest X 1.00", which
read as certainty about a species it is not (f856aba drew "unknown (closest Cancrella rufa 1.00)")."""

from __future__ import annotations

from app.workspace.frames.drawing import label
from app.workspace.identification import Identification, OodVerdict


def organism(score: float, threshold: float) -> Identification:
    return Identification.answered(
        "frame.png#1",
        [("Cancrella rufa", 0.61), ("Auropinna fasciata", 0.2)],
        [("Cancrella rufa", 1.0), ("Auropinna fasciata", 0.0)],
        {"knn": OodVerdict(score, threshold, score < threshold)},
        "knn",
    )


def test_an_unknown_is_labelled_with_its_unknown_score_not_the_closest_species():
    text = label(organism(0.41, 0.62))
    assert text == "unknown (score 0.41 < 0.62)"
    assert "Cancrella" not in text and "1.00" not in text


def test_a_named_one_keeps_its_species_and_probability():
    assert label(organism(0.9, 0.62)) == "Cancrella rufa 1.00"
