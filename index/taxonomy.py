"""Lineages, rank aggregation and taxonomic distance: pure functions over the catalog's taxa.

The catalog stores the taxonomy as a parent-pointer tree (``taxa``: concept, rank,
parent). A :class:`Lineage` is one concept's walk to the root, ordered from the
top. Seven ranks are *standard* (:data:`RANKS`, those of WoRMS and of the
FathomNet 2025 competition); any other rank a source gives (subfamily, tribe,
subclass) is kept in the lineage but never required, and an empty rank never
drops a taxon (a genus whose parent is a family is fine).

Taxonomic distance (FathomNet 2025, "hierarchical distance"): place both labels
in the tree of the 7 standard ranks, kingdom at depth 0 .. species at depth 6
(a label at genus rank sits at depth 5). The distance is the number of edges
between them: ``(depth(a) - L) + (depth(b) - L)`` where ``L`` is the depth of
their deepest common ancestor, the deepest standard rank at which both lineages
name the same taxon. Ranks outside the 7 are ignored. When the lineages share no
named rank (different kingdoms, or lineages too incomplete to say), the distance
is the maximum, 12. So 0 = same label, 2 = sibling species, 12 = nothing shared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The standard ranks, top down (WoRMS; FathomNet 2025 scores over exactly these).
RANKS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")
SPECIES = "species"
MAX_DISTANCE = 2 * (len(RANKS) - 1)  # 12

#: Every rank a lineage may hold, top down; a lineage is ordered by this list.
ALL_RANKS = (  # WoRMS' ranks; a rank outside this list is skipped in lineages (its taxon still links)
    "kingdom",
    "subkingdom",
    "infrakingdom",
    "phylum",
    "subphylum",
    "infraphylum",
    "parvphylum",
    "gigaclass",
    "megaclass",
    "superclass",
    "class",
    "subclass",
    "infraclass",
    "subterclass",
    "superorder",
    "order",
    "suborder",
    "infraorder",
    "parvorder",
    "superfamily",
    "epifamily",
    "family",
    "subfamily",
    "supertribe",
    "tribe",
    "subtribe",
    "genus",
    "subgenus",
    "species",
    "subspecies",
    "variety",
    "forma",
)
_SYNONYMS = {"division": "phylum", "subdivision": "subphylum"}
_ORDER = {r: i for i, r in enumerate(ALL_RANKS)}
_BINOMIAL = re.compile(r"^([A-Z][a-z]+) (?:\([A-Z][a-z]+\) )?[a-z][a-z-]+$")  # "Genus epithet"


def normalise_rank(rank: str | None) -> str | None:
    """``"Genus "`` -> ``"genus"``; None / blank -> None."""
    if rank is None or not str(rank).strip():
        return None
    rank = str(rank).strip().lower()
    return _SYNONYMS.get(rank, rank)


def rank_key(rank: str | None) -> int:
    """Sort key of a rank, top = 0 (a rank outside ALL_RANKS, and None, sort last)."""
    return _ORDER.get(rank, len(ALL_RANKS) + 1) if rank is not None else len(ALL_RANKS) + 1


def binomial_genus(name: str) -> str | None:
    """The genus of a binomial species name (``"Poralia rufescens"`` -> ``"Poralia"``), else None."""
    match = _BINOMIAL.match(name.strip())
    return match.group(1) if match else None


@dataclass(frozen=True)
class Lineage:
    """A concept, its rank (None when no source said) and its ancestors with ranks, top down.

    ``ranks`` includes the concept itself when its rank is known.
    """

    concept: str
    rank: str | None
    ranks: tuple[tuple[str, str], ...] = ()  # (rank, name), ordered by ALL_RANKS

    def at(self, rank: str) -> str | None:
        """The taxon of this lineage at ``rank``, or None."""
        return next((name for r, name in self.ranks if r == rank), None)

    def as_dict(self) -> dict[str, str]:
        return dict(self.ranks)

    @property
    def depth(self) -> int:
        """Depth in the 7-rank tree: the index in RANKS of the concept's rank (or of the deepest
        standard rank above it, for a rank outside the 7); -1 when nothing is known."""
        return max((RANKS.index(r) for r, _ in self.ranks if r in RANKS), default=-1)

    def to_dict(self) -> dict[str, Any]:
        return {"concept": self.concept, "rank": self.rank, "lineage": dict(self.ranks)}


def lineages(rows: Iterable[tuple]) -> dict[str, Lineage]:
    """Every concept's lineage from taxa rows ``(concept, rank, parent, ...)``.

    A parent missing from the rows ends the walk; a cycle (a concept that is its own
    ancestor) is cut where it closes. Two ancestors at one rank keep the nearer one.
    """
    nodes = {str(r[0]): (normalise_rank(r[1]), r[2]) for r in rows}
    out: dict[str, Lineage] = {}
    for concept, (rank, _) in nodes.items():
        seen, chain, cur = set(), {}, concept
        while cur is not None and cur in nodes and cur not in seen:
            seen.add(cur)
            r, parent = nodes[cur]
            if r in _ORDER and r not in chain:
                chain[r] = cur
            cur = parent
        out[concept] = Lineage(concept, rank, tuple(sorted(chain.items(), key=lambda kv: rank_key(kv[0]))))
    return out


def lineage_of(concept: str, tree: Mapping[str, Lineage]) -> Lineage:
    """The lineage of ``concept``, or an empty one (rank unknown) when the tree lacks it."""
    return tree.get(concept) or Lineage(concept, None)


# -- answers at rank -----------------------------------------------------------------


def standard(lineage: Lineage) -> tuple[str | None, ...]:
    """The lineage at the 7 standard ranks (None where empty)."""
    d = lineage.as_dict()
    return tuple(d.get(r) for r in RANKS)


def distance(a: Lineage, b: Lineage) -> int:
    """FathomNet 2025 taxonomic distance (0..12) between two labels (see the module docstring)."""
    sa, sb = standard(a), standard(b)
    da, db = a.depth, b.depth
    if a.concept == b.concept:
        return 0
    if da < 0 or db < 0:
        return MAX_DISTANCE
    common = [i for i in range(min(da, db) + 1) if sa[i] is not None and sa[i] == sb[i]]
    if not common:
        return MAX_DISTANCE
    lca = max(common)
    return min(MAX_DISTANCE, (da - lca) + (db - lca))


def distance_matrix(rows: Sequence[Lineage], cols: Sequence[Lineage]) -> np.ndarray:
    """(len(rows), len(cols)) int distances."""
    return np.asarray([[distance(a, b) for b in cols] for a in rows], dtype=np.int64).reshape(len(rows), len(cols))


@dataclass(frozen=True)
class RankTable:
    """The taxa above a set of classes, and which classes each contains.

    ``taxa``: every taxon on the classes' lineages (the classes included), with ``lineages``
    theirs; ``member``: (C, T) bool, class c lies under (or is) taxon t; ``distance``: (C, T)
    float, the taxonomic distance from class c to taxon t (computed once, with the table).
    """

    classes: tuple[str, ...]
    taxa: tuple[str, ...]
    lineages: tuple[Lineage, ...]
    member: np.ndarray = field(repr=False)
    distance: np.ndarray = field(repr=False)

    def probabilities(self, probs: np.ndarray) -> np.ndarray:
        """(n, C) class probabilities -> (n, T) taxon probabilities: a taxon's probability is the
        sum over the classes under it (its species and the classes labelled at its own rank)."""
        return np.asarray(probs, dtype=np.float64) @ self.member.astype(np.float64)


def rank_table(classes: Sequence[str], tree: Mapping[str, Lineage]) -> RankTable:
    """The :class:`RankTable` of ``classes`` over the catalog's ``tree`` (see :func:`lineages`)."""
    classes = tuple(str(c) for c in classes)
    lin = [lineage_of(c, tree) for c in classes]
    taxa: dict[str, Lineage] = {}
    for c, line in zip(classes, lin, strict=True):
        for _, name in line.ranks:
            taxa.setdefault(name, lineage_of(name, tree))
        taxa.setdefault(c, line)
    names = tuple(taxa)
    index = {n: i for i, n in enumerate(names)}
    member = np.zeros((len(classes), len(names)), dtype=bool)
    for ci, (c, line) in enumerate(zip(classes, lin, strict=True)):
        member[ci, index[c]] = True
        for _, name in line.ranks:
            member[ci, index[name]] = True
    lines = tuple(taxa.values())
    return RankTable(classes, names, lines, member, distance_matrix(lin, lines).astype(np.float64))


@dataclass(frozen=True)
class TaxonAnswer:
    """The answer at the deepest confident rank: the taxon, its rank, probability and lineage."""

    name: str | None  # None: not even the top rank passed the threshold
    rank: str | None
    probability: float
    lineage: dict[str, str] = field(default_factory=dict)  # rank -> name, top down
    decode: str = "probable"  # probable | distance
    expected_distance: float | None = None  # under the species probabilities
    # what ``probability`` was measured on: the known species (summed calibrated probabilities), or
    # "held-out species" for a crop judged unknown (``index.metrics.unknown_ranks``)
    basis: str = "known species"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rank": self.rank,
            "probability": self.probability,
            "lineage": dict(self.lineage),
            "decode": self.decode,
            "expected_distance": self.expected_distance,
            "basis": self.basis,
        }


DECODINGS = ("probable", "distance")
#: A taxon is named when its summed probability reaches this. Provisional (not yet measured on
#: validation in bench/; see the taxa section of bench/RESULTS.md when it exists).
RANK_THRESHOLD = 0.5


def decode(
    table: RankTable, probs: np.ndarray, threshold: float, method: str = "probable", unknown: np.ndarray | None = None
) -> list[TaxonAnswer]:
    """One :class:`TaxonAnswer` per row of ``probs`` (n, C) over ``table.classes``.

    ``probable``: the deepest taxon whose summed probability is >= ``threshold`` (ties: the more
    probable); ``distance``: the taxon of least expected taxonomic distance
    ``sum_c p(c) * distance(c, t)``. Rows flagged in ``unknown`` (n,) bool are not a known class,
    so their answer is a taxon above the classes' own rank: classes (and their ranks) are excluded.

    Raises ValueError for an unknown ``method``.
    """
    if method not in DECODINGS:
        raise ValueError(f"decode must be one of {', '.join(DECODINGS)}, not {method!r}")
    probs = np.asarray(probs, dtype=np.float64)
    rank_p = table.probabilities(probs)
    expected = probs @ table.distance  # (n, T)
    depth = np.asarray([line.depth for line in table.lineages])
    is_class = np.isin(np.asarray(table.taxa, dtype=object), np.asarray(table.classes, dtype=object))
    flags = np.zeros(len(probs), dtype=bool) if unknown is None else np.asarray(unknown, dtype=bool)
    out = []
    for row in range(len(probs)):
        allowed = ~is_class if flags[row] else np.ones(len(table.taxa), dtype=bool)
        if method == "probable":
            ok = allowed & (rank_p[row] >= threshold)
            if not ok.any():
                out.append(TaxonAnswer(None, None, float(rank_p[row][allowed].max(initial=0.0)), {}, method))
                continue
            cand = np.flatnonzero(ok)
            best = cand[np.lexsort((-rank_p[row][cand], -depth[cand]))[0]]
        else:
            cand = np.flatnonzero(allowed)
            if cand.size == 0:
                out.append(TaxonAnswer(None, None, 0.0, {}, method))
                continue
            best = cand[np.lexsort((-depth[cand], expected[row][cand]))[0]]
        line = table.lineages[best]
        out.append(
            TaxonAnswer(
                table.taxa[best],
                line.rank,
                float(rank_p[row][best]),
                line.as_dict(),
                method,
                float(expected[row][best]),
            )
        )
    return out
