"""The report folder written from a hand-made summary: files, figures, "n/a", JSON round trip."""

from __future__ import annotations

import json

import numpy as np

from app.report.report import write_report
from app.workspace.evaluation import RawFigures
from app.workspace.results import (
    ClassFigures,
    Classification,
    ConfusablePair,
    EvaluationSummary,
    Retrieval,
    SplitCounts,
)
from index.metrics.classification import OodReport


def summary(top5):
    return EvaluationSummary(
        model="m",
        generation="gen-0007",
        counts=SplitCounts(10, 4, 6, 3, 2, ["Heldus"]),
        classification=Classification(
            0.5,
            top5,
            0.4,
            0.45,
            0.6,
            0.5,
            {"a": ClassFigures(1.0, 0.5, 2 / 3, 4), "b": ClassFigures(0.25, 0.5, 1 / 3, 2)},
        ),
        retrieval=Retrieval(0.75, 0.875, 1.0, 0.625, 6),
        ood={
            "knn": OodReport(
                auroc=0.9,
                fpr_at_95_tpr=0.2,
                aupr_in=0.85,
                aupr_out=0.8,
                known_accuracy=0.95,
                unknown_accuracy=0.6,
                threshold=0.3,
            )
        },
        confusable=[ConfusablePair("a", "b", 0.123)],
        ood_decision_scorer="knn",
    )


def raw():
    rng = np.random.default_rng(0)
    test = rng.normal(size=(6, 4)).astype(np.float32)
    return RawFigures(
        np.array([[3, 1], [1, 1]]),
        ("a", "b"),
        (test, np.array(["a"] * 4 + ["b"] * 2)),
        (test[:3] + 1, np.array(["Heldus"] * 3)),
        {"knn": (rng.random(6), rng.random(3))},
    )


def test_report_files_and_figures(tmp_path):
    written = write_report(summary(None), raw(), tmp_path)
    assert [p.name for p in written] == ["confusion.png", "embedding_map.png", "eval.json", "roc.png", "summary.md"]
    text = (tmp_path / "summary.md").read_text()
    assert "# oceanid evaluation: m (gen-0007)" in text
    assert "top-1 **0.500**, top-5 n/a, F1-macro **0.400**" in text  # 2 species: top-5 does not apply
    assert "| a | 1.000 | 0.500 | 0.667 | 4 |" in text and "| knn (used) | 0.900 | 0.200 | 0.800 |" in text
    assert "Recall@1 0.750" in text and "| a | b | 0.123 |" in text
    data = json.loads((tmp_path / "eval.json").read_text())
    assert data["classification"]["top5"] is None
    assert EvaluationSummary.from_dict(data) == summary(None)


def test_report_shows_top5_when_it_applies(tmp_path):
    write_report(summary(0.875), raw(), tmp_path)
    assert "top-5 0.875" in (tmp_path / "summary.md").read_text()
