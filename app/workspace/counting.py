"""``oceanid count``: organisms per taxon in a set of crops, raw and adjusted for the engine's known confusion.

::

    images -> identify (the engine's answers)            \\
    --where -> the crops' stored vectors -> Engine.verdicts -> answers -> index.metrics.counts.adjusted_counts
                                                             (the decision's validation confusion, stored at
                                                              ``index build``) -> CountResult

Raw counts are classify-and-count: each crop counted as the species it is answered as. Adjusted counts
invert the confusion measured on validation crops when the trained prototypes were decided
(:func:`app.workspace.decisions.count_confusion`), so a species that draws answers from its neighbours
is not over-counted; crops answered ``unknown`` are counted apart (and, when held-out crops measured how
unknown organisms are answered, adjusted too). ``species add`` / ``remove`` store the confusion with the added
species (:func:`store_added_confusion`, beside their scorer, keyed by the prototypes' digest); where none is
stored, their crops are counted raw and left out of the adjustment (said in the notes).
:func:`count_error` is ``evaluate``'s figure: per class, how far raw and adjusted counts of the known
test crops are from the truth.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.catalog.catalog import Catalog
from index.catalog.decisions import prototypes_digest
from index.catalog.embeddings import ADDED, group_keys, load_embeddings
from index.catalog.lookup import allowed_ids
from index.errors import OceanidError
from index.files import write_json_atomic
from index.home import Home
from index.metrics.counts import BOOTSTRAP, LEVEL, UNKNOWN, CountConfusion, adjusted_counts, confusion_of
from index.records import HOLDOUT, VAL
from index.scoring.prototypes import Prototypes
from index.scoring.scorer_store import scorer_folder

log = logging.getLogger(__name__)

#: classes graded by ``evaluate``'s count error need this many test crops (fewer: a relative error is noise)
MIN_GRADED = 20
NO_CONFUSION = "no validation confusion stored for this model: raw counts only (run `oceanid index build`)"


@dataclass(frozen=True)
class TaxonCount:
    """One taxon's organisms in the sample."""

    taxon: str
    raw: int  # crops answered as it
    adjusted: float | None = None  # None: not adjusted (an added species, or no stored confusion)
    low: float | None = None  # the interval (``CountResult.level``) around ``adjusted``
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CountResult:
    """What ``oceanid count`` prints: per taxon raw and adjusted counts with intervals; unknowns apart."""

    model: str
    generation: str | None
    crops: int  # crops answered (known, added or unknown)
    taxa: tuple[TaxonCount, ...]  # known and added species, most organisms first
    unknown: TaxonCount  # crops answered unknown (adjusted when held-out crops measured them)
    unreadable: int = 0  # images that could not be read (not counted)
    adjusted_with: str | None = None  # what the adjustment inverted; None: raw counts only
    level: float = LEVEL
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "generation": self.generation,
            "crops": self.crops,
            "unreadable": self.unreadable,
            "adjusted_with": self.adjusted_with,
            "level": self.level,
            "taxa": [t.to_dict() for t in self.taxa],
            "unknown": self.unknown.to_dict(),
            "notes": list(self.notes),
        }


def count_answers(
    answers: Sequence[str],
    confusion: CountConfusion | None,
    rng: np.random.Generator | None = None,
    draws: int = BOOTSTRAP,
) -> tuple[tuple[TaxonCount, ...], TaxonCount, str | None, tuple[str, ...]]:
    """(taxa, unknown, adjusted_with, notes) of a sample of answers (a species name or ``unknown`` each).
    Raises InvalidInput (a degenerate stored confusion)."""
    raw = Counter(str(a) for a in answers)
    notes: list[str] = []
    if confusion is None:
        notes.append(NO_CONFUSION)
        taxa = tuple(TaxonCount(t, n) for t, n in raw.most_common() if t != UNKNOWN)
        return taxa, TaxonCount(UNKNOWN, raw.get(UNKNOWN, 0)), None, tuple(notes)
    outcomes = set(confusion.outcomes)
    apart = {t: n for t, n in raw.items() if t not in outcomes}
    if apart:
        notes.append(
            f"{sum(apart.values())} crop(s) answered as species added after the decision ({', '.join(sorted(apart))}): "
            "counted raw, not adjusted"
        )
    result = adjusted_counts(
        np.asarray([raw.get(o, 0) for o in confusion.outcomes], dtype=np.int64), confusion, rng=rng, draws=draws
    )
    notes += result.notes
    if UNKNOWN not in confusion.classes:
        notes.append(
            "no held-out crops measured how unknown organisms are answered: the adjusted counts take every "
            "organism for one of the known species"
        )
    figures = {
        c: TaxonCount(c, raw.get(c, 0), float(a), float(lo), float(hi))
        for c, a, lo, hi in zip(result.classes, result.adjusted, result.low, result.high, strict=True)
    }
    unknown = figures.pop(UNKNOWN, TaxonCount(UNKNOWN, raw.get(UNKNOWN, 0)))
    taxa = [*figures.values(), *(TaxonCount(t, n) for t, n in apart.items())]
    taxa.sort(key=lambda t: (-(t.adjusted if t.adjusted is not None else t.raw), -t.raw, t.taxon))
    n_val = int(confusion.matrix().sum())
    how = f"the validation confusion ({n_val} crops of {len(confusion.classes)} classes, adjusted classify-and-count)"
    return tuple(t for t in taxa if t.raw or (t.adjusted or 0) >= 0.5), unknown, how, tuple(notes)


def counted(
    model: str,
    generation: str | None,
    answers: Sequence[str],
    confusion: CountConfusion | None,
    unreadable: int = 0,
    draws: int = BOOTSTRAP,
    notes: Sequence[str] = (),
) -> CountResult:
    """The :class:`CountResult` of a sample of answers (a seeded bootstrap: the same answers count the same)."""
    taxa, unknown, how, more = count_answers(answers, confusion, np.random.default_rng(0), draws)
    return CountResult(model, generation, len(answers), taxa, unknown, unreadable, how, LEVEL, (*notes, *more))


def where_vectors(catalog: Catalog, model_id: str, where: str) -> tuple[np.ndarray, int]:
    """The stored (n, d) vectors of the catalog crops ``where`` selects, and how many of them have none.
    Raises FilterError (a bad filter)."""
    allowed = allowed_ids(catalog, where)
    ids, vectors = load_embeddings(catalog, model_id)
    keep = np.isin(ids, allowed)
    return vectors[keep], int(len(allowed) - keep.sum())


ADDED_COUNTS = "added-counts"  # the scorer-store kind of the confusion with the added species


def added_confusion_file(home: Home, model_id: str, prototypes: Prototypes) -> Path:
    """Where the count confusion with the added species is stored, keyed by the prototypes' digest."""
    return scorer_folder(home.root, model_id, ADDED_COUNTS, prototypes_digest(prototypes)) / "counts.json"


def fit_added_confusion(engine: Any, catalog: Catalog) -> CountConfusion | None:
    """The count confusion once species were added (``species add`` / ``remove`` store it): the engine's
    verdicts, added species included, on the trained species' validation crops and (true class ``unknown``)
    on the held-out crops of the decision's scorer choice that are not of an added species. An added
    species has no validation crop: its row is taken as answered right (``assumed``, said in every count).
    None without added species or without the decision's own confusion."""
    from app.workspace.decisions import choice_rows

    base = engine.decision.counts if engine.decision is not None else None
    names = [str(n) for n in engine.prototypes.names]
    added = sorted(n for n in names if engine.origins.get(n) == ADDED)
    if base is None or not added:
        return None
    trained = [n for n in names if n not in added]
    _, val_v, val_l = load_embeddings(catalog, engine.model_id, (VAL,), with_labels=True)
    keep = np.isin(val_l, trained)
    true = [str(x) for x in val_l[keep]]
    answers = [str(a) for a in engine.verdicts(val_v[keep]).species] if keep.any() else []
    classes = [*trained, *added]
    if UNKNOWN in base.classes:
        held_ids, held_v, held_l = load_embeddings(catalog, engine.model_id, (HOLDOUT,), with_labels=True)
        rows = choice_rows(group_keys(catalog, held_ids)) & ~np.isin(held_l, names)
        if rows.any():
            true += [UNKNOWN] * int(rows.sum())
            answers += [str(a) for a in engine.verdicts(held_v[rows]).species]
            classes.append(UNKNOWN)
    return confusion_of(true, answers, classes, [*names, UNKNOWN])


def store_added_confusion(engine: Any, catalog: Catalog, home: Home) -> bool:
    """Fit and store :func:`fit_added_confusion` for the engine's prototypes unless stored. Returns whether written."""
    path = added_confusion_file(home, engine.model_id, engine.prototypes)
    if path.is_file():
        return False
    confusion = fit_added_confusion(engine, catalog)
    if confusion is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, confusion.to_dict())
    return True


def refresh_added_confusion(catalog: Catalog, home: Home, model_id: str) -> bool:
    """Store the confusion with the added species for the model's prototypes as the engine now loads (``species
    add`` / ``remove``, ``index build``), when it has added species and none is stored. Never raises a library
    error: a failure is logged, and ``count`` says the confusion is missing. Returns whether one was written."""
    from app.workspace.engine import load_engine
    from index.catalog.embeddings import load_prototypes

    try:
        prototypes, origins = load_prototypes(catalog, model_id)
        if not any(o == ADDED for o in origins.values()) or added_confusion_file(home, model_id, prototypes).is_file():
            return False
        return store_added_confusion(load_engine(catalog, home, model_id, gpu_search=False), catalog, home)
    except OceanidError as exc:
        log.warning("the count confusion with the added species is not stored now (%s)", exc)
        return False


def confusion_for(engine: Any, home: Home | None) -> tuple[CountConfusion | None, list[str]]:
    """The confusion counts are adjusted with (read, never fitted): with added species, the one ``species add``
    stored for these prototypes; else the decision's. With a note when added species have none stored."""
    confusion = engine.decision.counts if engine.decision is not None else None
    if home is None or not any(o == ADDED for o in engine.origins.values()):
        return confusion, []
    path = added_confusion_file(home, engine.model_id, engine.prototypes)
    if path.is_file():
        return CountConfusion.from_dict(json.loads(path.read_text(encoding="utf-8"))), []
    return confusion, ["no confusion with the added species is stored (it is measured at `species add`)"]


def count(
    engine: Any,
    catalog: Catalog,
    identify: Callable[[Sequence[Any]], Sequence[Any]],
    images: Sequence[Any] = (),
    where: str | None = None,
    draws: int = BOOTSTRAP,
    home: Home | None = None,
) -> CountResult:
    """Count the organisms of ``images`` (each identified with ``identify``: Identifications) or of the
    catalog crops ``where`` selects (their stored vectors), judged by ``engine`` (its verdicts; the stored
    count confusion, :func:`confusion_for`). ``where`` wins when both are given (the CLI refuses that).
    Raises FilterError, InvalidInput (a degenerate stored confusion)."""
    confusion, notes = confusion_for(engine, home)
    if where is not None:
        vectors, missing = where_vectors(catalog, engine.model_id, where)
        answers = [str(s) for s in engine.verdicts(vectors).species] if len(vectors) else []
        if missing:
            notes.append(f"{missing} crop(s) matching the filter have no vector for this model (run `oceanid embed`)")
        return counted(engine.model_id, engine.generation, answers, confusion, 0, draws, notes)
    results = identify(images)
    answers = [UNKNOWN if r.unknown else str(r.species) for r in results if not r.error]
    bad = sum(1 for r in results if r.error)
    return counted(engine.model_id, engine.generation, answers, confusion, bad, draws, notes)


@dataclass(frozen=True)
class ClassCount:
    """One class of the test split: its crops, and the raw / adjusted counts of them."""

    truth: int
    raw: int
    adjusted: float | None
    raw_error: float  # |raw - truth| / truth
    adjusted_error: float | None


@dataclass(frozen=True)
class CountError:
    """``evaluate``'s count error: mean absolute relative error per class over the known test crops (classes
    with at least ``min_crops``), of raw counts and of adjusted ones."""

    min_crops: int
    classes: int  # classes graded
    raw: float | None  # mean absolute relative error of raw counts (None: no class graded)
    adjusted: float | None  # of adjusted counts (None: no stored confusion)
    per_class: dict[str, ClassCount] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_error(
    truth: Sequence[str], answers: Sequence[str], confusion: CountConfusion | None, min_crops: int = MIN_GRADED
) -> CountError:
    """The count error of one sample whose true classes are known (``evaluate``: the known test crops).
    Raises InvalidInput (a degenerate stored confusion)."""
    true = Counter(str(t) for t in truth)
    raw = Counter(str(a) for a in answers)
    adjusted: dict[str, float] = {}
    if confusion is not None:
        outcomes = list(confusion.outcomes)
        result = adjusted_counts(np.asarray([raw.get(o, 0) for o in outcomes], dtype=np.int64), confusion, draws=0)
        adjusted = {c: float(a) for c, a in zip(result.classes, result.adjusted, strict=True)}
    graded = sorted(c for c, n in true.items() if n >= min_crops)
    per_class = {}
    for c in graded:
        a = adjusted.get(c) if confusion is not None else None
        per_class[c] = ClassCount(
            true[c],
            raw.get(c, 0),
            a,
            abs(raw.get(c, 0) - true[c]) / true[c],
            None if a is None else abs(a - true[c]) / true[c],
        )
    mean = lambda xs: float(np.mean(xs)) if xs else None  # noqa: E731
    return CountError(
        min_crops,
        len(graded),
        mean([p.raw_error for p in per_class.values()]),
        mean([p.adjusted_error for p in per_class.values() if p.adjusted_error is not None]) if confusion else None,
        per_class,
        None
        if confusion is not None
        else "no validation confusion stored: raw counts only (run `oceanid index build`)",
    )
