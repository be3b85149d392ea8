"""``EvaluationSummary.from_dict`` reads ``eval.json`` back through one pydantic ``TypeAdapter`` over the
result dataclasses (issue 25), instead of a hand-written reader per type."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from app.workspace import DetectionFigures, EvaluationSummary
from app.workspace.frames.figures import CascadeFigures

SUMMARY = {
    "model": "m",
    "generation": "gen-0001",
    "counts": {"train": 10, "val": 2, "test": 3, "holdout": 4, "species": 2, "held_out_species": ["Z z"]},
    "classification": {
        "top1": 0.5,
        "top5": None,
        "f1_macro": 0.25,
        "f1_weighted": 0.5,
        "precision_macro": 0.5,
        "recall_macro": 0.75,
        "per_class": {"A a": {"precision": 1.0, "recall": 0.5, "f1": 0.6666666666666666, "support": 2}},
    },
    "retrieval": {"recall_at_1": 1.0, "recall_at_5": 1.0, "recall_at_10": 1.0, "map_at_r": 0.875, "queries": 3},
    "few_shot": {
        "shots_1": {  # a report written before the keys were the shots themselves
            "recall": 0.5,
            "known_accuracy_change": -0.125,
            "known_accuracy_before": 0.75,
            "species": {"Z z": {"recall": 0.5, "known_accuracy": 0.625, "known_accuracy_change": -0.125}},
        }
    },
    "confusable": [{"a": "A a", "b": "B b", "similarity": 0.9}],
    "detection": {
        "detector_id": "det",
        "split": "test",
        "cascade": {
            "frames": 2,
            "detections": 4,
            "min_score": 0.3,
            "map50": 0.5,
            "map": 0.25,
            "recall50": 0.75,
            "organisms": 3,
            "found": 3,
            "known_organisms": 2,
            "found_known": 2,
            "named": 1,
            "held_out_organisms": 1,
            "found_held_out": 1,
            "flagged_unknown": 1,
            "found_and_named": 0.5,
            "named_when_found": 0.5,
            "found_and_flagged_unknown": 1.0,
            "detect_ms_per_frame": 12.5,
            "cascade_ms_per_frame": 20.25,
            "cascade_ms_per_frame_mean": 21.0,
            "skipped": [["bad.png", "not an image"]],
        },
    },
}


def test_the_summary_reads_back_into_its_dataclasses():
    summary = EvaluationSummary.from_dict(json.loads(json.dumps(SUMMARY)))
    assert isinstance(summary.detection, DetectionFigures) and isinstance(summary.detection.cascade, CascadeFigures)
    assert summary.detection.cascade.skipped == (("bad.png", "not an image"),)
    assert set(summary.few_shot) == {1} and summary.few_shot[1].species["Z z"].known_accuracy == 0.625
    assert summary.classification.per_class["A a"].support == 2
    again = json.loads(json.dumps(summary.to_dict()))
    assert again["few_shot"]["1"]["recall"] == 0.5
    assert again["detection"]["cascade"]["skipped"] == [["bad.png", "not an image"]]
    assert (
        again["counts"] == SUMMARY["counts"]
        and again["classification"]["per_class"] == SUMMARY["classification"]["per_class"]
    )


def test_a_field_of_the_wrong_type_is_refused_and_an_unknown_one_ignored():
    # would fail on the hand-written readers: they passed any value through, and raised TypeError on a key
    # a newer report adds
    broken = json.loads(json.dumps(SUMMARY))
    broken["retrieval"]["recall_at_1"] = "high"
    with pytest.raises(ValidationError, match="recall_at_1"):
        EvaluationSummary.from_dict(broken)
    newer = json.loads(json.dumps(SUMMARY))
    newer["retrieval"]["recall_at_20"] = 1.0
    assert EvaluationSummary.from_dict(newer).retrieval.recall_at_1 == 1.0
