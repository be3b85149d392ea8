"""Deciding, once per set of trained prototypes, how the engine judges crops.

:func:`fit_decision` chooses the decision scorer on the catalog's held-out species, fits
every scorer's threshold and the calibration temperature on the known validation crops,
all against the model's TRAINED prototypes and train split only. ``index build`` (through
:func:`app.workspace.pipeline.fit_prototypes`) stores the result
(:mod:`index.catalog.decisions`); the engine reads it at load. Species added later never enter
it: the held-out crops an added species came from still count as unknown for the choice,
and its support crops are not training crops of the known species.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence

import numpy as np

from index.catalog.catalog import Catalog
from index.catalog.decisions import Decision, prototypes_digest
from index.catalog.embeddings import TRAINED, group_keys, load_embeddings, load_prototypes
from index.catalog.taxa import tree
from index.errors import EmptyIndex
from index.home import Home
from index.metrics.counts import UNKNOWN, CountConfusion, confusion_of
from index.metrics.ranks import RankThresholdChoice, choose_rank_threshold
from index.metrics.unknown_ranks import UnknownRanks, fit_unknown_ranks
from index.records import HOLDOUT, TRAIN, VAL
from index.scoring.calibration import Calibration, calibrated_probabilities, fit_temperature
from index.scoring.ood import DEFAULT_SCORER, SCORERS, TPR_TARGET, Scorer, calibrate, make_scorer
from index.scoring.ood_choice import choose_scorer
from index.scoring.priors import ClassPriors, PriorsRequest, adjusted_logits
from index.scoring.prototypes import Prototypes
from index.scoring.scorer_store import save_scorers, scorer_folder
from index.taxonomy import lineage_of, rank_table

log = logging.getLogger(__name__)

#: Known validation crops and held-out crops needed before the decision scorer is chosen on
#: them: below that a 95%-TPR threshold and an AUROC are too noisy to beat the measured default.
MIN_CHOICE_CROPS = 30


def fit_scorers(
    prototypes: Prototypes,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray] | None = None,
    names: Sequence[str] = tuple(SCORERS),
    few_shot: Sequence[str] = (),
) -> tuple[dict[str, Scorer], dict[str, float]]:
    """Fit each OOD scorer on ``train`` (vectors (n, d), labels (n,)) and, when ``val`` is
    given, calibrate its threshold on val crops of species that have prototypes (95% accepted;
    without ``val`` the thresholds dict is empty).

    ``few_shot``: species known only from a few support crops (added with ``species add``);
    the knn scorer puts their scores on the trained species' scale (``index.scoring.ood.KnnScorer``)."""
    vectors, labels = train
    if len(vectors) == 0:
        raise EmptyIndex("no training vectors to fit the OOD scorers on")
    scorers, thresholds = {}, {}
    calib = None
    if val is not None:
        known = np.isin(val[1], list(prototypes.names))
        calib = val[0][known] if known.any() else vectors
    for name in names:
        options = {"few_shot": tuple(few_shot), "tpr": TPR_TARGET} if name == "knn" else {}
        scorer = make_scorer(name, **options).fit(vectors, labels, prototypes)
        scorers[name] = scorer
        if calib is not None:
            thresholds[name] = calibrate(scorer.score(calib), TPR_TARGET)
    return scorers, thresholds


def choice_rows(groups: Sequence[str] | np.ndarray) -> np.ndarray:
    """(n,) bool: the held-out crops the decision scorer is chosen on, by their group key
    (track / near-duplicate group): a stable hash puts every group wholly on one half, so
    frames of one track never sit on both. ``evaluate`` grades unknown detection on the
    other half, so the choice is not graded on the crops (or tracks) it was made on."""
    return np.asarray([hashlib.sha1(str(g).encode()).digest()[0] % 2 == 0 for g in groups], dtype=bool)


def fit_calibration(prototypes: Prototypes, val: tuple[np.ndarray, np.ndarray]) -> Calibration | None:
    """Temperature scaling of prototype cosines on validation crops of species with prototypes
    (None when there are fewer than 2 such species or no crops)."""
    names = list(prototypes.names)
    known = np.isin(val[1], names)
    if known.sum() == 0 or len(set(val[1][known].tolist())) < 2:
        return None
    index = {n: i for i, n in enumerate(names)}
    labels = np.asarray([index[n] for n in val[1][known]], dtype=np.int64)
    return fit_temperature(prototypes.similarities(val[0][known]), labels)


def trained_only(prototypes: Prototypes, origins: dict[str, str]) -> Prototypes:
    """The prototypes learned in training (added species dropped)."""
    for name in [n for n in prototypes.names if origins.get(n) != TRAINED]:
        prototypes = prototypes.without_class(name)
    return prototypes


def fit_decision(
    catalog: Catalog,
    model_id: str,
    trained: Prototypes | None = None,
    version: int | None = None,
    home: Home | None = None,
    priors: PriorsRequest | None = None,
    previous: ClassPriors | None = None,
) -> Decision:
    """Choose the decision scorer and fit thresholds and temperature for the model's trained
    prototypes (default: the stored ones). With ``home``, the scorers fitted on the way are
    stored there too (:func:`app.workspace.stored_scorers.known_scorers` reads them). The class
    priors are ``priors`` resolved against the ``previous`` decision's (``index.scoring.priors.PriorsRequest``).
    Raises EmptyIndex (no prototypes / training vectors), InvalidInput (unusable priors)."""
    if trained is None:
        prototypes, origins = load_prototypes(catalog, model_id)
        trained = trained_only(prototypes, origins)
    _, train_v, train_l = load_embeddings(catalog, model_id, (TRAIN,), with_labels=True)
    _, val_v, val_l = load_embeddings(catalog, model_id, (VAL,), with_labels=True)
    scorers, thresholds = fit_scorers(trained, (train_v, train_l), (val_v, val_l))
    known = np.isin(val_l, list(trained.names))
    choice, scorer = None, DEFAULT_SCORER
    held = None
    if known.any():
        held_ids, held_v, held_l = load_embeddings(catalog, model_id, (HOLDOUT,), with_labels=True)
        unknown = choice_rows(group_keys(catalog, held_ids)) & ~np.isin(held_l, list(trained.names))
        if known.sum() < MIN_CHOICE_CROPS or unknown.sum() < MIN_CHOICE_CROPS:
            unknown[:] = False  # too few to choose on: the measured default, reported as such
        choice = choose_scorer(train_v, train_l, val_v[known], held_v[unknown], prototypes=trained, fitted=scorers)
        scorer = choice.scorer
        held = (held_v[unknown], held_l[unknown])
    calibration = fit_calibration(trained, (val_v, val_l))
    class_priors = (priors or PriorsRequest()).resolve(train_l, trained.names, previous)
    known_val = (val_v[known], val_l[known]) if known.any() else None
    ranks = rank_choice(
        catalog, trained, calibration, scorers[scorer], thresholds.get(scorer), known_val, held, class_priors
    )
    placing = unknown_rank_choice(
        catalog, trained, calibration, scorers[scorer], thresholds.get(scorer), held, class_priors
    )
    decision = Decision(
        model_id,
        prototypes_digest(trained),
        scorer,
        thresholds,
        TPR_TARGET,
        calibration,
        choice,
        catalog.prototypes_version(model_id) if version is None else version,
        rank_threshold=ranks.threshold,
        rank_choice=ranks,
        unknown_ranks=placing,
        priors=class_priors,
        counts=count_confusion(
            trained,
            scorers[scorer],
            thresholds.get(scorer),
            known_val,
            held,
            lambda v: adjusted_logits(
                trained.similarities(v), trained.names, calibration.temperature if calibration else None, class_priors
            ),
        ),
    )
    if home is not None:
        save_scorers(
            scorer_folder(home.root, model_id, "known", decision.prototypes_digest),
            scorers,
            decision.prototypes_digest,
            decision.prototypes_version,
        )
    log.info(
        "decided for %s: scorer %s (%s), threshold %.4f, rank threshold %.2f (%s), priors %s x %.2f",
        model_id,
        scorer,
        choice.source if choice else "default, no validation crops",
        thresholds[scorer],
        ranks.threshold,
        ranks.source,
        decision.priors.source,
        decision.priors.tau,
    )
    return decision


def rank_choice(
    catalog: Catalog,
    trained: Prototypes,
    calibration: Calibration | None,
    scorer: Scorer,
    threshold: float | None,
    known: tuple[np.ndarray, np.ndarray] | None,
    held: tuple[np.ndarray, np.ndarray] | None,
    priors: ClassPriors | None = None,
) -> RankThresholdChoice:
    """The rank threshold, chosen on the known validation crops and the held-out crops of the
    scorer choice (``index.metrics.ranks.choose_rank_threshold``): each crop's calibrated species
    probabilities over the trained prototypes, flagged new when the decision ``scorer`` scores
    it under ``threshold``, decoded at each grid threshold; the least mean taxonomic distance wins."""
    lineages = tree(catalog)
    table = rank_table(trained.names, lineages)

    def prepared(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sims = trained.similarities(vectors)
        probs = calibration.probabilities(sims) if calibration is not None else calibrated_probabilities(sims, 1.0)
        probs = priors.adjust(probs, trained.names) if priors is not None else probs
        flags = scorer.score(vectors) < threshold if threshold is not None else np.zeros(len(vectors), dtype=bool)
        return probs, labels.astype(str), flags

    sets = [prepared(*s) if s is not None and len(s[0]) else None for s in (known, held)]
    names = set(table.classes) | ({str(x) for x in held[1]} if held is not None else set())
    return choose_rank_threshold(table, {n: lineage_of(n, lineages) for n in names}, sets[0], sets[1])


def unknown_rank_choice(
    catalog: Catalog,
    trained: Prototypes,
    calibration: Calibration | None,
    scorer: Scorer,
    threshold: float | None,
    held: tuple[np.ndarray, np.ndarray] | None,
    priors: ClassPriors | None = None,
) -> UnknownRanks:
    """How often each rank named for a crop judged unknown was right, measured on the held-out
    crops of the scorer choice that the decision ``scorer`` flags under ``threshold``
    (``index.metrics.unknown_ranks``); no such crops: no rank is ever named for an unknown crop."""
    if held is None or not len(held[0]) or threshold is None:
        return UnknownRanks.empty()
    vectors, labels = held
    flagged = scorer.score(vectors) < threshold
    if not flagged.any():
        return UnknownRanks.empty()
    lineages = tree(catalog)
    table = rank_table(trained.names, lineages)
    sims = trained.similarities(vectors[flagged])
    probs = calibration.probabilities(sims) if calibration is not None else calibrated_probabilities(sims, 1.0)
    probs = priors.adjust(probs, trained.names) if priors is not None else probs
    names = {str(x) for x in labels[flagged]}
    return fit_unknown_ranks(table, probs, sims, labels[flagged], {n: lineage_of(n, lineages) for n in names})


def priors_request(priors: str | None, tau: float | None) -> PriorsRequest | None:
    """``index build --priors train|balanced|FILE --prior-tau T`` -> the request (None: keep the stored).
    Raises SourceError (an unreadable CSV), InvalidInput (a name that is neither a source nor a file)."""
    from pathlib import Path

    from index.errors import InvalidInput
    from index.scoring.priors import SOURCES, read_priors_csv

    if priors is None and tau is None:
        return None
    if priors is None or priors in SOURCES and priors != "file":
        return PriorsRequest(priors, tau)
    path = Path(priors)
    if not path.is_file():
        raise InvalidInput(
            f"--priors {priors!r} is neither train, balanced nor a file",
            hint="a CSV of class,weight rows, or train (training frequencies) or balanced (equal)",
        )
    return PriorsRequest("file", tau, read_priors_csv(path), str(path))


def count_answers(
    trained: Prototypes,
    scorer: Scorer,
    threshold: float | None,
    vectors: np.ndarray,
    scores: np.ndarray | None = None,
) -> np.ndarray:
    """(n,) str: what the engine answers for (n, d) ``vectors`` over the trained prototypes, the top
    species or ``unknown`` (the decision scorer below its threshold): the outcomes counts are made of.
    ``scores``: (n, C) scores in ``trained.names`` order whose row argmax is the engine's species answer
    (default: the prototype cosines; pass the engine's adjusted logits when it answers with class priors)."""
    scores = trained.similarities(vectors) if scores is None else scores
    names = np.asarray(trained.names, dtype=object)[np.asarray(scores).argmax(axis=1)]
    if threshold is None:
        return names.astype(str)
    return np.where(scorer.score(vectors) < threshold, UNKNOWN, names).astype(str)


def count_confusion(
    trained: Prototypes,
    scorer: Scorer,
    threshold: float | None,
    known_val: tuple[np.ndarray, np.ndarray] | None,
    held: tuple[np.ndarray, np.ndarray] | None,
    scores: Callable[[np.ndarray], np.ndarray] | None = None,
) -> CountConfusion | None:
    """The confusion ``oceanid count`` adjusts with: the engine's answers on the known species'
    validation crops, and (true class ``unknown``) on the held-out crops the decision scorer was
    chosen on, when there are any. None without validation crops (counts stay raw, and say so).
    ``scores``: (n, d) vectors -> the (n, C) scores the engine answers by (:func:`count_answers`)."""
    if known_val is None or len(known_val[0]) == 0:
        return None
    vectors, labels = known_val
    true = [str(x) for x in labels]

    def answered(v: np.ndarray) -> list[str]:
        return list(count_answers(trained, scorer, threshold, v, scores(v) if scores is not None else None))

    answers = answered(vectors)
    classes = [str(n) for n in trained.names]
    if held is not None and len(held[0]):
        true += [UNKNOWN] * len(held[0])
        answers += answered(held[0])
        classes.append(UNKNOWN)
    return confusion_of(true, answers, classes, [*map(str, trained.names), UNKNOWN])
