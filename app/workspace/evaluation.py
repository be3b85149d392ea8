"""``oceanid evaluate``: classification, OOD, retrieval and few-shot figures on the test split.

Everything is measured on the *trained* system: prototypes learned in training
(not species added later), scorers fitted on the train split and calibrated on
val, known crops from the test split, unknown crops from the held-out species.
Few-shot adds each held-out species in memory from 1 and 5 examples, each from a
different group (track / frame: the catalog's ``group_key``), and names its crops of the
other groups only, so a support crop and a query are never two frames of one track.
Taxonomy (:mod:`app.workspace.taxon_evaluation`): rank accuracy and taxonomic distance on the
known test crops, genus / family placement of the held-out crops, for both decodings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.workspace import counting
from app.workspace.counting import CountError
from app.workspace.decisions import choice_rows, count_answers, fit_calibration, fit_scorers
from app.workspace.engine import Engine
from app.workspace.results import (
    ClassFigures,
    Classification,
    ConfusablePair,
    DetectionFigures,
    EvaluationSummary,
    FewShot,
    FewShotSpecies,
    Retrieval,
    SplitCounts,
    TaxonomyFigures,
)
from app.workspace.taxon_evaluation import taxonomy_figures
from index.catalog.catalog import Catalog
from index.catalog.embeddings import TRAINED, crop_rows, group_keys, load_embeddings
from index.catalog.taxa import tree
from index.errors import EmptyIndex
from index.home import Home
from index.metrics.classification import classification_metrics, ood_metrics, retrieval_metrics
from index.metrics.label_rank import label_rank_report, subtree_matrix
from index.records import HOLDOUT, TEST, TRAIN, VAL
from index.scoring.calibration import Calibration, calibrated_probabilities
from index.scoring.ood import Scorer
from index.scoring.priors import adjusted_logits
from index.scoring.prototypes import Prototypes
from index.taxonomy import rank_table

if TYPE_CHECKING:
    from app.workspace.frames.detector import LoadedDetector
    from index.ingest.crops import CropConfig

log = logging.getLogger(__name__)

SHOTS = (1, 5)


@dataclass
class RawFigures:
    """The arrays behind the report's plots (not part of the JSON)."""

    confusion: np.ndarray  # (C, C) int, rows = true class
    classes: tuple[str, ...]
    test: tuple[np.ndarray, np.ndarray]  # known test vectors (n, d), labels (n,)
    held: tuple[np.ndarray, np.ndarray]  # held-out vectors (m, d), labels (m,)
    roc: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # scorer -> known, unknown scores


def _subset(prototypes: Prototypes, names: list[str]) -> Prototypes:
    for name in [n for n in prototypes.names if n not in names]:
        prototypes = prototypes.without_class(name)
    return prototypes


def _accuracy(prototypes: Prototypes, vectors: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(prototypes.names)[prototypes.similarities(vectors).argmax(1)] == labels).mean())


def support_and_queries(
    groups: np.ndarray, rows: np.ndarray, shots: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray] | None:
    """``shots`` support rows from distinct groups (one each) and the rows of every other
    group as queries; None when the rows span fewer than ``shots + 1`` groups."""
    distinct = np.unique(groups[rows])
    if distinct.size <= shots:
        return None
    chosen = rng.choice(distinct, size=shots, replace=False)
    pick = np.array([rng.choice(rows[groups[rows] == g]) for g in chosen])
    return pick, rows[~np.isin(groups[rows], chosen)]


def _few_shot(
    base: Prototypes,
    held: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
) -> dict[int, FewShot]:
    """``held``: (vectors, labels, group keys) of the held-out crops."""
    test_v, test_l = test
    before = _accuracy(base, test_v, test_l)
    out = {}
    for shots in SHOTS:
        per_species = {}
        for name in sorted(set(held[1].tolist())):
            drawn = support_and_queries(held[2], np.flatnonzero(held[1] == name), shots, rng)
            if drawn is None:
                continue
            pick, rest = drawn
            protos = base.with_class(name, held[0][pick])
            recall = _accuracy(protos, held[0][rest], np.full(rest.size, name, dtype=object))
            after = _accuracy(protos, test_v, test_l)
            per_species[name] = FewShotSpecies(recall, after, after - before)
        if per_species:
            out[shots] = FewShot(
                recall=float(np.mean([v.recall for v in per_species.values()])),
                known_accuracy_change=float(np.mean([v.known_accuracy_change for v in per_species.values()])),
                known_accuracy_before=before,
                species=per_species,
            )
    return out


def confusable_pairs(prototypes: Prototypes, top: int = 10) -> list[ConfusablePair]:
    """The most similar pairs of species by their closest prototypes."""
    return [ConfusablePair(a, b, s) for a, b, s in prototypes.confusable_pairs(top)]


def _taxonomy(
    engine: Engine,
    catalog: Catalog,
    base: Prototypes,
    calibration: Calibration | None,
    scorer: Scorer,
    threshold: float,
    test: tuple[np.ndarray, np.ndarray],
    held: tuple[np.ndarray, np.ndarray],
) -> TaxonomyFigures:
    """Both decodings of the calibrated answers over the trained prototypes (the held-out crops
    graded are those the decision scorer was not chosen on)."""
    lineages = tree(catalog)

    def prepared(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sims = base.similarities(vectors)
        probs = calibration.probabilities(sims) if calibration is not None else calibrated_probabilities(sims, 1.0)
        probs = engine.priors.adjust(probs, base.names) if engine.priors is not None else probs
        return probs, labels, scorer.score(vectors) < threshold

    choice = engine.decision.rank_choice if engine.decision is not None else None
    cosines = (base.similarities(test[0]), base.similarities(held[0]) if len(held[0]) else None)
    return taxonomy_figures(
        rank_table(base.names, lineages),
        lineages,
        engine.rank_threshold,
        choice.source if choice is not None else "default",
        prepared(*test),
        prepared(*held) if len(held[0]) else None,
        engine.unknown_ranks,
        cosines,
    )


def evaluate(engine: Engine, catalog: Catalog, seed: int = 0) -> tuple[EvaluationSummary, RawFigures]:
    """Return (the summary, raw arrays for the report's plots). Raises EmptyIndex."""
    model_id = engine.model_id
    trained = [n for n in engine.prototypes.names if engine.origins.get(n) == TRAINED]
    base = _subset(engine.prototypes, trained)
    _, train_v, train_l = load_embeddings(catalog, model_id, (TRAIN,), with_labels=True)
    _, val_v, val_l = load_embeddings(catalog, model_id, (VAL,), with_labels=True)
    _, test_v, test_l = load_embeddings(catalog, model_id, (TEST,), with_labels=True)
    held_ids, held_v, held_l = load_embeddings(catalog, model_id, (HOLDOUT,), with_labels=True)
    known = np.isin(test_l, trained)
    test_v, test_l = test_v[known], test_l[known].astype(str)
    held_l = held_l.astype(str)
    if len(test_v) == 0:
        raise EmptyIndex("no embedded test crops of trained species", hint="run `oceanid split` and `oceanid embed`")
    # answers as the engine gives them: calibrated cosines plus the stored class priors
    temperature = engine.calibration.temperature if engine.calibration is not None else None
    test_logits = adjusted_logits(base.similarities(test_v), base.names, temperature, engine.priors)
    cls = classification_metrics(test_l, test_logits, base.names)
    column = {n: i for i, n in enumerate(base.names)}
    at_rank = label_rank_report(
        np.asarray([column[n] for n in test_l]),
        test_logits.argmax(axis=1),
        base.names,
        subtree_matrix(base.names, tree(catalog)),
    )
    r = retrieval_metrics(test_v, test_l)
    summary = EvaluationSummary(
        model=model_id,
        generation=engine.generation,
        counts=SplitCounts(
            int(len(train_v)),
            int(len(val_v)),
            int(len(test_v)),
            int(len(held_v)),
            len(trained),
            sorted(set(held_l.tolist())),
        ),
        classification=Classification(
            top1=cls.top1,
            top5=cls.top5,
            f1_macro=cls.macro["f1"],
            f1_weighted=cls.weighted["f1"],
            precision_macro=cls.macro["precision"],
            recall_macro=cls.macro["recall"],
            per_class={
                c: ClassFigures(p, rc, f, s)
                for c, p, rc, f, s in zip(cls.classes, cls.precision, cls.recall, cls.f1, cls.support, strict=False)
            },
            top1_at_label_rank=at_rank.top1_at_label_rank,
            label_rank=at_rank.to_dict(),
            priors=(
                {"source": engine.priors.source, "tau": engine.priors.tau, "active": engine.priors.active}
                if engine.priors is not None
                else None
            ),
        ),
        retrieval=Retrieval(r.recall[1], r.recall[5], r.recall[10], r.map_at_r, r.queries),
        confusable=confusable_pairs(base),
    )
    calibration = fit_calibration(base, (val_v, val_l.astype(str)))
    if calibration is not None:
        index = {n: i for i, n in enumerate(base.names)}
        summary.calibration = calibration.evaluated(
            base.similarities(test_v), np.asarray([index[n] for n in test_l], dtype=np.int64)
        )
    summary.scorer_choice = engine.choice
    raw = RawFigures(np.asarray(cls.confusion), cls.classes, (test_v, test_l), (held_v, held_l))
    # Unknown detection is graded on the held-out crops the decision scorer was not chosen on.
    graded = (
        ~choice_rows(group_keys(catalog, held_ids))
        if engine.choice is not None and engine.choice.n_unknown_val
        else np.ones(len(held_v), dtype=bool)
    )
    scorers, thresholds = fit_scorers(base, (train_v, train_l), (val_v, val_l))
    summary.taxonomy = _taxonomy(
        engine,
        catalog,
        base,
        calibration,
        scorers[engine.scorer],
        thresholds[engine.scorer],
        (test_v, test_l),
        (held_v[graded], held_l[graded]),
    )
    if graded.any():
        for name, scorer in scorers.items():
            s_known, s_unknown = scorer.score(test_v), scorer.score(held_v[graded])
            summary.ood[name] = ood_metrics(s_known, s_unknown, thresholds[name])
            raw.roc[name] = (s_known, s_unknown)
    summary.count_error = test_count_error(
        engine, base, scorers[engine.scorer], thresholds[engine.scorer], test_v, test_l
    )
    if len(held_v):
        summary.ood_decision_scorer = engine.scorer
        group_of = {r.annotation_id: r.group_key for r in crop_rows(catalog, split=HOLDOUT)}
        held_g = np.asarray([group_of.get(int(i), f"id:{int(i)}") for i in held_ids], dtype=object)
        summary.few_shot = _few_shot(base, (held_v, held_l, held_g), (test_v, test_l), np.random.default_rng(seed))
    return summary, raw


def test_count_error(
    engine: Engine, base: Prototypes, scorer: Scorer, threshold: float, test_v: np.ndarray, test_l: np.ndarray
) -> CountError:
    """Raw and adjusted counts of the known test crops against their labels (``app.workspace.counting``):
    answered as the engine answers them (calibrated, prior-adjusted scores), adjusted with the stored confusion."""
    temperature = engine.calibration.temperature if engine.calibration is not None else None
    scores = adjusted_logits(base.similarities(test_v), base.names, temperature, engine.priors)
    answers = count_answers(base, scorer, threshold, test_v, scores)
    confusion = engine.decision.counts if engine.decision is not None else None
    return counting.count_error(test_l, answers, confusion, min_crops=counting.MIN_GRADED)


def evaluate_and_report(
    engine: Engine,
    catalog: Catalog,
    home: Home,
    report: Path | None,
    map_method: str,
    seed: int,
    frames: Callable[[Engine], DetectionFigures | None],
) -> EvaluationSummary:
    """Evaluate ``engine`` (after checking no test crop trained it), grade whole frames with
    ``frames`` (None when the home has no detector), write the report folder (default
    reports/latest) and remember it as the last report."""
    from app.report.report import write_report
    from app.workspace.splitting import check_no_leak

    check_no_leak(catalog, home, engine.model_id)  # a re-split home must not grade on seen crops
    summary, raw = evaluate(engine, catalog, seed=seed)
    summary.model_stale = catalog.model_stale(engine.model_id)
    summary.detection = frames(engine)
    folder = (Path(report) if report else home.reports / "latest").absolute()
    write_report(summary, raw, folder, map_method)
    summary.report_dir = str(folder)
    catalog.set_last_report(str(folder))
    return summary


def last_evaluation(catalog: Catalog) -> EvaluationSummary | None:
    """The summary of the last `oceanid evaluate`, with ``report_dir``; None if never run."""
    folder = catalog.last_report()
    if not folder or not (Path(folder) / "eval.json").is_file():
        return None
    summary = EvaluationSummary.from_dict(json.loads((Path(folder) / "eval.json").read_text()))
    summary.report_dir = folder
    return summary


def evaluate_home(
    catalog: Catalog,
    home: Home,
    crop: CropConfig,
    engine: Callable[[], Engine],
    load_detector: Callable[[], LoadedDetector],
    report: Path | None,
    map_method: str,
    seed: int,
    progress: bool,
) -> EvaluationSummary:
    """:func:`evaluate_and_report` of the engine ``engine()`` loads, once the home is known writable
    (one line before the work); whole frames are graded through the cascade with the catalog's
    current detector (:func:`app.workspace.frames.grading.evaluate_frames`; None when none to grade)."""
    from app.workspace.frames.grading import evaluate_frames

    catalog.ensure_schema()
    frames = lambda loaded: evaluate_frames(catalog, home.root, crop, loaded, load_detector, progress)  # noqa: E731
    return evaluate_and_report(engine(), catalog, home, report, map_method, seed, frames)
