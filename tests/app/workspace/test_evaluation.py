"""``oceanid evaluate``: the summary's shape, figures checked against oracles, a hand case."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import app
from app.workspace import EvaluationSummary

runner = CliRunner()


def test_evaluate_json_shape(tiny_ws):
    result = runner.invoke(app, ["--home", str(tiny_ws.home), "evaluate", "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert {"top1", "top5", "f1_macro", "f1_weighted", "per_class"} <= set(s["classification"])
    assert set(s["ood"]) == {"prototype", "knn", "mahalanobis", "relative_mahalanobis", "msp"}
    assert all({"auroc", "fpr_at_95_tpr", "aupr_out", "threshold"} <= set(v) for v in s["ood"].values())
    assert {"recall_at_1", "recall_at_5", "recall_at_10", "map_at_r"} <= set(s["retrieval"])
    assert {"1", "5"} <= set(s["few_shot"])  # JSON keys are text; read back they are the integer shots
    assert {1, 5} <= set(EvaluationSummary.from_dict(s).few_shot)
    assert all({"recall", "known_accuracy_change"} <= set(v) for v in s["few_shot"].values())
    assert 0 <= s["classification"]["top1"] <= s["classification"]["top5"] <= 1
    report = tiny_ws.home / "reports" / "latest"
    for name in ("summary.md", "eval.json", "confusion.png", "roc.png", "embedding_map.png"):
        assert (report / name).stat().st_size > 100
    last = tiny_ws.last_evaluation()
    assert last.model == "tiny" and last.report_dir == str(report)
    assert (
        json.loads(json.dumps(EvaluationSummary.from_dict(s).to_dict())) == s
    )  # the JSON reads back into the same summary


def test_evaluation_figures_match_independent_oracles(tiny_ws):
    """top-1 against prototypes recomputed from the train vectors; recall@1 against brute force."""
    from index.catalog.embeddings import load_embeddings

    ws = tiny_ws
    s = ws.evaluate()
    _, tv, tl = load_embeddings(ws.catalog, "tiny", ("train",), with_labels=True)
    _, sv, sl = load_embeddings(ws.catalog, "tiny", ("test",), with_labels=True)
    names = sorted(set(tl.tolist()))
    means = np.stack([tv[tl == n].mean(0) for n in names])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    keep = np.isin(sl, names)
    sv, sl = sv[keep], sl[keep]
    predicted = np.asarray(names)[(sv @ means.T).argmax(1)]
    assert s.classification.top1 == pytest.approx(float((predicted == sl).mean()), abs=1e-9)
    sims = sv @ sv.T
    np.fill_diagonal(sims, -np.inf)
    has_mate = np.array([(sl == label).sum() > 1 for label in sl])
    nearest = sl[sims.argmax(1)]
    assert s.retrieval.recall_at_1 == pytest.approx(float((nearest == sl)[has_mate].mean()), abs=1e-9)
    assert s.counts.test == len(sv) and s.counts.species == len(names)
    with ws.catalog.read() as con:
        held = sorted(
            r[0] for r in con.execute("SELECT DISTINCT concept FROM annotations WHERE split = 'holdout'").fetchall()
        )
    assert s.counts.held_out_species == held


def test_confusable_pairs_hand_case():
    """Three classes at known angles: b is 10 degrees from a, c 80 degrees from a."""
    from app.workspace.evaluation import confusable_pairs
    from index.scoring.prototypes import Prototypes

    def at(deg):
        return [np.cos(np.radians(deg)), np.sin(np.radians(deg))]

    protos = Prototypes(("a", "b", "c"), np.asarray([at(0), at(10), at(80)], np.float32), np.arange(3))
    pairs = confusable_pairs(protos, top=3)
    assert [(p.a, p.b) for p in pairs] == [("a", "b"), ("b", "c"), ("a", "c")]
    np.testing.assert_allclose([p.similarity for p in pairs], np.cos(np.radians([10, 70, 80])), rtol=1e-6)


def test_evaluate_reports_taxonomy_for_both_decodings(tiny_ws):
    """Rank accuracy of the top-1 species at species rank is top-1 (calibration keeps the argmax);
    the held-out species are the split's; the CSV holds what the JSON holds."""
    import csv

    s = tiny_ws.evaluate()
    t = s.taxonomy
    assert t is not None and set(t.decodings) == {"probable", "distance"}
    assert t.species_rank_accuracy["species"] == pytest.approx(s.classification.top1, abs=1e-9)
    assert t.rank_threshold == tiny_ws.engine().rank_threshold and t.threshold_source == "validation"
    for d in t.decodings.values():
        assert 0 <= d.mean_distance <= 12 and sum(d.answered_ranks.values()) == s.counts.test
        assert set(d.held_out_species) == set(s.counts.held_out_species)
        accuracies = [
            d.rank_accuracy[r]
            for r in ("kingdom", "phylum", "class", "order", "family", "genus")
            if d.rank_accuracy[r] is not None
        ]
        assert accuracies == sorted(accuracies, reverse=True)  # a right genus is a right family, and up
    rows = list(csv.DictReader((tiny_ws.home / "reports" / "latest" / "taxonomy.csv").open()))
    probable = {(r["crops"], r["figure"], r["rank"]): r["value"] for r in rows if r["decode"] == "probable"}
    assert float(probable[("known test", "mean_distance", "")]) == pytest.approx(
        t.decodings["probable"].mean_distance, abs=1e-4
    )
    assert "## Answers at rank (taxonomy)" in (tiny_ws.home / "reports" / "latest" / "summary.md").read_text()
