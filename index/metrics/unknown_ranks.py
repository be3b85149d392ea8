"""Which rank an unknown crop may be placed at, and how often such a placement was right.

A crop judged unknown is no known species, so its species probabilities (calibrated among the
KNOWN species) say nothing about its genus: summed up the tree they read "genus Cancrella 1.00"
for an octopus nearest a crab. What can be said is measured on held-out species (species the
model never trained on, ``index.records.HOLDOUT``): for each standard rank above species, the
taxon the summed probabilities favour there is *claimed*, and over the held-out crops judged
unknown we count how often that claim named their true taxon, by bins of the claim's evidence:
the crop's cosine to the nearest prototype of a species under the claimed taxon (a crop close
to a known jellyfish is more likely a jellyfish than one far from everything; the summed
probability is no evidence, it is 1.00 for nearly every crop). The bins split at the quantiles
of the measured crops' evidence. Each held-out species counts once in a bin (the mean of its
crops' hit rates), with one more species that was wrong as a prior, so one lucky species does
not make a rank trustworthy and a bin without evidence stays silent.

:func:`fit_unknown_ranks` measures this once (``index build``: stored with the engine's
decision, ``index.catalog.decisions``); :func:`place_unknown` answers a crop with the deepest
rank whose claim, walked down from the kingdom, stays above :data:`MINIMUM` at every rank, and
gives that measured share as its probability. Nothing holds: no taxon (the answer is "new to
oceanid", nothing more).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from index.taxonomy import RANKS, Lineage, RankTable, TaxonAnswer

#: Bins of a claim's evidence (cosine), split at the quantiles of the measured crops' evidence.
BINS = 2
#: A rank is named for an unknown crop only when its claims were right MORE often than this.
MINIMUM = 0.5
#: The ranks an unknown crop can be placed at (never the species: it is no known one).
PLACEABLE = RANKS[:-1]
BASIS = "held-out species"  # what an unknown crop's taxon probability was measured on


@dataclass(frozen=True)
class UnknownRanks:
    """Per rank and bin of evidence: the share of held-out species' unknown-judged crops whose
    claim at that rank was right (``None``: no held-out species in the bin)."""

    edges: tuple[float, ...]  # bin edges of the claim's evidence (cosine); the outer ones are -1 and 1
    right: dict[str, tuple[float | None, ...]]  # rank -> per bin, the species-weighted share right
    crops: dict[str, tuple[int, ...]]  # rank -> per bin, held-out crops counted
    species: dict[str, tuple[int, ...]]  # rank -> per bin, held-out species counted
    n_crops: int  # held-out crops judged unknown that were measured
    n_species: int  # held-out species they belong to
    minimum: float = MINIMUM

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UnknownRanks:
        return cls(
            tuple(float(e) for e in d["edges"]),
            {r: tuple(None if v is None else float(v) for v in vals) for r, vals in d["right"].items()},
            {r: tuple(int(v) for v in vals) for r, vals in d["crops"].items()},
            {r: tuple(int(v) for v in vals) for r, vals in d["species"].items()},
            int(d["n_crops"]),
            int(d["n_species"]),
            float(d.get("minimum", MINIMUM)),
        )

    @classmethod
    def empty(cls) -> UnknownRanks:
        """No held-out evidence: no rank is named for an unknown crop."""
        return cls((-1.0, 1.0), {}, {}, {}, 0, 0)

    def share(self, rank: str, evidence: float) -> float | None:
        """The measured share right of a claim at ``rank`` with this evidence (cosine)."""
        values = self.right.get(rank)
        if not values:
            return None
        return values[_bin(self.edges, evidence)]


def _bin(edges: Sequence[float], p: float) -> int:
    return int(min(max(np.searchsorted(edges, p, side="right") - 1, 0), len(edges) - 2))


def claims(table: RankTable, probs: np.ndarray, sims: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per placeable rank the table has taxa at: ((n,) index into ``table.taxa`` of the taxon
    with the largest summed probability at that rank, (n,) its evidence: the largest cosine to a
    class under it), for ``probs`` (n, C) calibrated probabilities and ``sims`` (n, C) cosines
    over ``table.classes``. The classes themselves are never claimed."""
    rank_p = table.probabilities(probs)
    sims = np.asarray(sims, dtype=np.float64)
    classes = set(table.classes)
    out = {}
    for rank in PLACEABLE:
        cols = np.asarray(
            [
                i
                for i, (t, line) in enumerate(zip(table.taxa, table.lineages, strict=True))
                if line.rank == rank and t not in classes
            ],
            dtype=np.int64,
        )
        if cols.size == 0:
            continue
        best = cols[rank_p[:, cols].argmax(axis=1)]
        members = table.member[:, best].T  # (n, C): the classes under each row's claim
        out[rank] = (best, np.where(members, sims, -np.inf).max(axis=1))
    return out


def fit_unknown_ranks(
    table: RankTable,
    probs: np.ndarray,
    sims: np.ndarray,
    labels: Sequence[str],
    truth: Mapping[str, Lineage],
    bins: int = BINS,
) -> UnknownRanks:
    """Measure the claims on held-out crops judged unknown: ``probs`` / ``sims`` (n, C) their
    calibrated probabilities and cosines over ``table.classes``, ``labels`` (n,) their true
    species, ``truth`` label -> lineage. A crop counts at a rank only where its true lineage names
    a taxon there."""
    labels = np.asarray([str(x) for x in labels])
    if len(labels) == 0:
        return UnknownRanks.empty()
    made = claims(table, probs, sims)
    nearest = np.asarray(sims, dtype=np.float64).max(axis=1)
    inner = np.quantile(nearest, np.arange(1, bins) / bins) if bins > 1 else np.asarray([])
    edges = (-1.0, *(float(e) for e in inner), 1.0)
    right, crops, species = {}, {}, {}
    for rank, (taxon, evidence) in made.items():
        true = np.asarray([truth[x].at(rank) if x in truth else None for x in labels], dtype=object)
        hit = np.asarray([t is not None and table.taxa[i] == t for i, t in zip(taxon, true, strict=True)])
        counted = np.asarray([t is not None for t in true])
        where = np.asarray([_bin(edges, float(v)) for v in evidence])
        r_vals, c_vals, s_vals = [], [], []
        for b in range(len(edges) - 1):
            rows = counted & (where == b)
            names = sorted(set(labels[rows].tolist()))
            rates = [float(hit[rows & (labels == n)].mean()) for n in names]
            r_vals.append(sum(rates) / (len(rates) + 1) if rates else None)  # one wrong species as a prior
            c_vals.append(int(rows.sum()))
            s_vals.append(len(names))
        right[rank], crops[rank], species[rank] = tuple(r_vals), tuple(c_vals), tuple(s_vals)
    return UnknownRanks(edges, right, crops, species, int(len(labels)), int(len(set(labels.tolist()))))


def place_unknown(table: RankTable, probs: np.ndarray, sims: np.ndarray, measured: UnknownRanks) -> list[TaxonAnswer]:
    """One answer per row of ``probs`` / ``sims`` (n, C) for crops judged unknown: walking down from the
    kingdom, the claim at each rank is kept while its measured share right exceeds
    ``measured.minimum`` and it lies under the claim kept above it; the answer is the deepest
    kept (probability: that measured share), or no taxon."""
    made = claims(table, probs, sims)
    out = []
    for row in range(len(probs)):
        kept: tuple[int, float] | None = None
        for rank in PLACEABLE:
            if rank not in made:
                continue
            taxon, evidence = int(made[rank][0][row]), float(made[rank][1][row])
            share = measured.share(rank, evidence)
            if share is None or share <= measured.minimum:
                break
            if kept is not None:
                above = table.lineages[kept[0]]
                if table.lineages[taxon].at(above.rank) != table.taxa[kept[0]]:
                    break
            kept = (taxon, share)
        if kept is None:
            out.append(TaxonAnswer(None, None, 0.0, {}, basis=BASIS))
            continue
        line = table.lineages[kept[0]]
        out.append(TaxonAnswer(table.taxa[kept[0]], line.rank, kept[1], line.as_dict(), basis=BASIS))
    return out


def answer_taxa(
    table: RankTable,
    probs: np.ndarray,
    sims: np.ndarray,
    answers: Sequence[TaxonAnswer],
    unknown: np.ndarray,
    measured: UnknownRanks | None,
) -> list[TaxonAnswer]:
    """``answers`` (the decoding over known species, one per row of ``probs`` / ``sims``) with the
    rows flagged ``unknown`` (n,) bool answered by :func:`place_unknown` instead (no evidence: no
    taxon)."""
    flags = np.asarray(unknown, dtype=bool)
    out = list(answers)
    rows = np.flatnonzero(flags)
    if rows.size:
        placed = place_unknown(table, np.asarray(probs)[rows], np.asarray(sims)[rows], measured or UnknownRanks.empty())
        for row, answer in zip(rows, placed, strict=True):
            out[row] = replace(answer, decode=out[row].decode)  # placed by held-out evidence, asked as decoded
    return out
