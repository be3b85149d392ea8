"""The taxonomy part of ``oceanid evaluate``: both decodings of the trained system's answers.

Known test crops: accuracy at each rank and mean taxonomic distance (``index.metrics.ranks``).
Held-out crops (species never trained): the share flagged new at species level whose answer
still names their true genus / family. Probabilities are the calibrated ones the engine answers
with; "flagged new" is the decision scorer under its threshold; the rank threshold is the
stored decision's.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from app.workspace.results import HeldOutPlacement, TaxonomyDecoding, TaxonomyFigures
from index.metrics.ranks import answer_distances, answer_lineage, placed, rank_accuracy
from index.metrics.unknown_ranks import UnknownRanks, answer_taxa
from index.taxonomy import DECODINGS, MAX_DISTANCE, Lineage, RankTable, decode, distance, lineage_of


def placement(truth: list[Lineage], answers: list, flagged: np.ndarray, known: set[str]) -> HeldOutPlacement:
    """Genus / family placement, counting only crops whose true genus / family has a trained
    species in it (``known``: the taxa above the trained species)."""
    genus, n_genus = placed(truth, answers, flagged, "genus", known)
    family, n_family = placed(truth, answers, flagged, "family", known)
    return HeldOutPlacement(
        len(truth),
        float(np.mean(flagged)) if len(truth) else 0.0,
        genus / n_genus if n_genus else None,
        family / n_family if n_family else None,
    )


def taxonomy_figures(
    table: RankTable,
    tree: dict[str, Lineage],
    threshold: float,
    source: str,
    known: tuple[np.ndarray, np.ndarray, np.ndarray],
    held: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    unknown_ranks: UnknownRanks | None = None,
    sims: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> TaxonomyFigures:
    """``known`` / ``held``: (calibrated probabilities (n, C) over ``table.classes``, true labels
    (n,), flagged new (n,) bool) of the known test crops and of the graded held-out crops. With
    ``sims`` (their (n, C) cosines, known and held), flagged crops are answered as ``identify``
    answers them: placed by ``unknown_ranks`` (``index.metrics.unknown_ranks``), or not at all."""

    def answered(probs: np.ndarray, flags: np.ndarray, cosines: np.ndarray | None, method: str) -> list:
        answers = decode(table, probs, threshold, method, unknown=flags)
        return answers if cosines is None else answer_taxa(table, probs, cosines, answers, flags, unknown_ranks)

    probs, labels, flags = known
    truth = [lineage_of(str(x), tree) for x in labels]
    top1 = [lineage_of(table.classes[i], tree) for i in np.argmax(probs, axis=1)]
    species_distance = (
        float(np.mean([distance(t, p) for t, p in zip(truth, top1, strict=True)])) if truth else float(MAX_DISTANCE)
    )
    reachable = set(table.taxa)
    decodings = {}
    for method in DECODINGS:
        answers = answered(probs, flags, sims[0] if sims else None, method)
        held_all, per_species = None, {}
        if held is not None and len(held[1]):
            h_answers = answered(held[0], held[2], sims[1] if sims else None, method)
            h_truth = [lineage_of(str(x), tree) for x in held[1]]
            held_all = placement(h_truth, h_answers, held[2], reachable)
            for name in sorted(set(map(str, held[1]))):
                rows = np.flatnonzero(held[1].astype(str) == name)
                per_species[name] = placement(
                    [h_truth[i] for i in rows], [h_answers[i] for i in rows], held[2][rows], reachable
                )
        ranks = Counter(a.rank or ("none" if a.name is None else "unranked") for a in answers)
        decodings[method] = TaxonomyDecoding(
            method,
            float(answer_distances(truth, answers).mean()),
            rank_accuracy(truth, [answer_lineage(a) for a in answers]),
            dict(ranks),
            held_all,
            per_species,
        )
    return TaxonomyFigures(threshold, source, rank_accuracy(truth, top1), species_distance, decodings)
