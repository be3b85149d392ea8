"""Calibrated species probability, the unknown verdict beside it, and the decision scorer's choice."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from app.workspace import Workspace
from app.workspace.decisions import choice_rows
from index.catalog.embeddings import load_embeddings
from index.records import HOLDOUT, TEST, VAL
from index.scoring.calibration import calibrated_probabilities, nll


def _rows(ws, split, limit=6):
    with ws.catalog.read() as con:
        return con.execute(
            "SELECT crop_path FROM annotations WHERE split = ? ORDER BY annotation_id LIMIT ?", [split, limit]
        ).fetchall()


def test_identify_reports_the_calibrated_probability_of_the_top_species(tiny_home):
    ws = Workspace(tiny_home)
    engine = ws.engine()
    assert engine.calibration is not None
    paths = [tiny_home / p for (p,) in _rows(ws, TEST)]
    results = ws.identify(paths, k=3)
    vectors = engine.embed([__import__("PIL.Image", fromlist=["Image"]).open(p).convert("RGB") for p in paths])
    names = list(engine.prototypes.names)
    # the stored class priors (training frequencies at the default tau 0.5), added by hand: tau log(pi)
    priors = engine.priors
    assert priors is not None and priors.source == "train" and priors.tau == 0.5
    bias = priors.tau * np.log([priors.weights[n] for n in names]) if priors.active else np.zeros(len(names))
    expected = softmax(engine.prototypes.similarities(vectors) / engine.calibration.temperature + bias, axis=1)
    for r, p in zip(results, expected, strict=False):
        assert r.probabilities[0][0] == names[int(p.argmax())]
        assert abs(r.probability - float(p.max())) < 1e-4
        # the probability is not the cosine that used to be shown as "score"
        assert abs(r.probability - r.score) > 1e-6
        assert r.unknown_score == r.ood[r.scorer].score and r.unknown_threshold == r.ood[r.scorer].threshold
        assert r.unknown == (r.unknown_score < r.unknown_threshold)


def test_the_fitted_temperature_lowers_validation_nll(tiny_home):
    ws = Workspace(tiny_home)
    engine = ws.engine()
    _, v, labels = load_embeddings(ws.catalog, engine.model_id, (VAL,), with_labels=True)
    names = list(engine.prototypes.names)
    known = np.isin(labels, names)
    y = np.asarray([names.index(n) for n in labels[known]])
    logits = engine.prototypes.similarities(v[known])
    t = engine.calibration.temperature
    assert nll(logits, y, t) < nll(logits, y, 1.0)
    assert np.allclose(calibrated_probabilities(logits, t).sum(1), 1.0)


def test_too_few_held_out_crops_keep_the_measured_default(tiny_home):
    from index.scoring.ood import DEFAULT_SCORER

    engine = Workspace(tiny_home).engine()  # the tiny workspace has ~20 of each, below the minimum
    assert engine.choice.source == "default" and engine.scorer == DEFAULT_SCORER
    assert engine.choice.n_unknown_val == 0


def test_decision_scorer_is_chosen_on_held_out_crops_and_evaluate_grades_the_others(tiny_ws, monkeypatch):
    import app.workspace.decisions as decisions_module
    from app.workspace.pipeline import decide
    from index.catalog.embeddings import group_keys

    monkeypatch.setattr(decisions_module, "MIN_CHOICE_CROPS", 1)
    ws = tiny_ws
    assert decide(ws.catalog, "tiny", force=True)  # the choice is made when prototypes are built, not at load
    engine = ws.engine()
    ids, _, labels = load_embeddings(ws.catalog, engine.model_id, (HOLDOUT,), with_labels=True)
    unknown = ~np.isin(labels, list(engine.prototypes.names))
    choice = engine.choice
    assert choice is not None and choice.source == "held-out validation"
    assert choice.n_unknown_val == int((choice_rows(group_keys(ws.catalog, ids)) & unknown).sum()) > 0
    assert engine.scorer == choice.scorer
    best = max(choice.per_scorer, key=lambda n: choice.per_scorer[n]["auroc"])
    assert choice.scorer in (best, choice.default)
    summary = ws.evaluate()
    assert summary.scorer_choice == choice
    assert summary.calibration is not None and 0.0 <= summary.calibration.ece_test <= 1.0
    again = type(summary).from_dict(summary.to_dict())
    assert again.calibration == summary.calibration and again.scorer_choice == summary.scorer_choice
