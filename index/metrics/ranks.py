"""Taxonomy-aware evaluation: accuracy at each rank, mean taxonomic distance, placement of new
species, and the choice of the rank threshold on validation (pure numpy over lineages).

Distance is :func:`index.taxonomy.distance` (FathomNet 2025: 7 ranks, 0..12); an answer that
names nothing (no taxon reached the threshold) counts as the maximum, 12, as a competition
entry that names nothing would score. Every figure is over crops, each counted once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from index.taxonomy import MAX_DISTANCE, RANK_THRESHOLD, RANKS, Lineage, RankTable, TaxonAnswer, decode, distance

#: Thresholds tried when the rank threshold is chosen on validation.
THRESHOLD_GRID = tuple(round(0.30 + 0.05 * i, 2) for i in range(14))  # 0.30 .. 0.95


def answer_lineage(answer: TaxonAnswer) -> Lineage | None:
    """The lineage of a decoded answer (None when it names nothing)."""
    if answer.name is None:
        return None
    return Lineage(answer.name, answer.rank, tuple(answer.lineage.items()))


def answer_distances(truth: Sequence[Lineage], answers: Sequence[TaxonAnswer]) -> np.ndarray:
    """(n,) int: the taxonomic distance from each crop's true lineage to its answer's (12 when the
    answer names nothing)."""
    out = [
        MAX_DISTANCE if (a := answer_lineage(ans)) is None else distance(t, a)
        for t, ans in zip(truth, answers, strict=True)
    ]
    return np.asarray(out, dtype=np.int64)


def rank_accuracy(truth: Sequence[Lineage], predicted: Sequence[Lineage | None]) -> dict[str, float | None]:
    """Per standard rank: among crops whose true lineage names a taxon at that rank, the share
    whose prediction names the same taxon there (a prediction shallower than the rank, or none,
    is wrong at it). None for a rank no true lineage names."""
    out: dict[str, float | None] = {}
    for rank in RANKS:
        hits = [
            p is not None and p.at(rank) == t.at(rank)
            for t, p in zip(truth, predicted, strict=True)
            if t.at(rank) is not None
        ]
        out[rank] = float(np.mean(hits)) if hits else None
    return out


def placed(
    truth: Sequence[Lineage],
    answers: Sequence[TaxonAnswer],
    flagged: np.ndarray,
    rank: str,
    known: Collection[str] | None = None,
) -> tuple[int, int]:
    """(crops placed, crops counted): a crop counts when its true lineage names a taxon at
    ``rank`` (and, given ``known``, the taxa above the trained species, that taxon is one of
    them: a genus no trained species is in cannot be named); it is placed when it is ``flagged``
    (n,) bool new at species level and its answer names that same taxon at ``rank``."""
    counted = hit = 0
    for t, ans, new in zip(truth, answers, np.asarray(flagged, dtype=bool), strict=True):
        if t.at(rank) is None or (known is not None and t.at(rank) not in known):
            continue
        counted += 1
        hit += bool(new) and ans.lineage.get(rank) == t.at(rank)
    return hit, counted


@dataclass(frozen=True)
class RankThresholdChoice:
    """How the rank threshold was chosen: the grid value of least mean taxonomic distance of the
    probable decoding on validation (known val crops and, when there are enough, the held-out
    crops the decision scorer was chosen on, the two means weighted equally)."""

    threshold: float
    source: str  # "validation" | "default" (no validation crops with lineages)
    n_known: int  # known validation crops
    n_unknown: int  # held-out crops used
    mean_distance: float | None  # the objective at ``threshold``
    grid: dict[str, float]  # threshold (as text) -> objective
    tree_digest: str = ""  # :func:`tree_digest` of the lineages it was chosen over

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tree_digest(lineages: Sequence[Lineage]) -> str:
    """sha256 of a set of lineages (a `taxa import` that changes one changes it)."""
    digest = hashlib.sha256()
    for line in sorted(lineages, key=lambda x: x.concept):
        digest.update(repr((line.concept, line.rank, line.ranks)).encode())
    return digest.hexdigest()


def choose_rank_threshold(
    table: RankTable,
    truth: dict[str, Lineage],
    known: tuple[np.ndarray, np.ndarray, np.ndarray],
    unknown: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    grid: Sequence[float] = THRESHOLD_GRID,
) -> RankThresholdChoice:
    """Choose the threshold of the probable decoding on validation.

    ``known`` / ``unknown``: (probabilities (n, C) over ``table.classes``, true labels (n,),
    flagged-new (n,) bool) of known validation crops and of held-out crops; ``truth``: label ->
    lineage. The objective is the mean taxonomic distance from each crop's true label to its
    decoded answer (the two sets' means averaged); ties go to the higher threshold. With no
    known crops the default :data:`index.taxonomy.RANK_THRESHOLD` is returned (source "default").
    """
    digest = tree_digest(table.lineages)
    sets = [s for s in (known, unknown) if s is not None and len(s[1])]
    if known is None or not len(known[1]):
        return RankThresholdChoice(RANK_THRESHOLD, "default", 0, 0, None, {}, digest)
    scores = {}
    for t in grid:
        means = []
        for probs, labels, flags in sets:
            answers = decode(table, probs, t, "probable", unknown=flags)
            means.append(float(answer_distances([truth[str(x)] for x in labels], answers).mean()))
        scores[f"{t:.2f}"] = float(np.mean(means))
    best = min(scores, key=lambda k: (scores[k], -float(k)))
    n_unknown = len(unknown[1]) if unknown is not None and len(sets) == 2 else 0
    return RankThresholdChoice(
        float(best), "validation", int(len(known[1])), int(n_unknown), scores[best], scores, digest
    )
