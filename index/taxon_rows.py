"""The taxa rows a source's rank columns become, and how they merge into the catalog's taxa (ground floor).

A source names a concept and some of its ranks (a COCO category's supercategory, a folder's lineage
CSV row, ``species add --genus``): :func:`chain` turns them into parent-linked :class:`Taxon` rows,
:func:`merge` folds such rows into what the catalog knows without erasing it (or correcting it).
The lineages themselves, ranks and distances are :mod:`index.taxonomy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from index.records import Taxon
from index.taxonomy import ALL_RANKS, SPECIES, binomial_genus, lineage_of, lineages, normalise_rank, rank_key


def infer_rank(name: str, given: Mapping[str, str]) -> str | None:
    """The rank of concept ``name`` given the other ranks a source names for it.

    A name equal to a given rank's value is at that rank (a family folder "Scaridae" whose
    family column says Scaridae); a binomial name, or any name below a given genus, is a
    species; otherwise the rank is unknown (None), never guessed to be species.
    """
    for rank, value in given.items():
        if value == name:
            return rank
    if given.get("genus") or binomial_genus(name):
        return SPECIES
    return None


def given_ranks(name: str, ranks: Mapping[str, str | None]) -> dict[str, str]:
    """Clean a source's rank -> name cells for concept ``name``: blank cells dropped, ranks
    lower-cased, and the genus of a binomial name filled in when no genus was given."""
    out = {normalise_rank(r): str(v).strip() for r, v in ranks.items() if normalise_rank(r) and v and str(v).strip()}
    if "genus" not in out and name not in out.values() and binomial_genus(name):
        out["genus"] = binomial_genus(name)
    return out


def chain(name: str, ranks: Mapping[str, str]) -> list[Taxon]:
    """The Taxon rows of concept ``name`` and its ancestors named in ``ranks`` (rank -> name),
    top down, each the parent of the next. ``name``'s rank comes from :func:`infer_rank`;
    ancestors at ranks below the concept's are ignored."""
    ranks = given_ranks(name, ranks)
    own = infer_rank(name, ranks)
    limit = rank_key(own) if own else len(ALL_RANKS)
    above = sorted(
        ((r, v) for r, v in ranks.items() if rank_key(r) < limit and v != name), key=lambda kv: rank_key(kv[0])
    )
    out, parent = [], None
    for r, v in above:
        out.append(Taxon(v, r, parent))
        parent = v
    out.append(Taxon(name, own, parent))
    return out


@dataclass(frozen=True)
class Merge:
    """What merging new taxonomy into the catalog's gives: the rows to write and the conflicts kept."""

    rows: tuple[Taxon, ...]  # rows to upsert (new taxa, filled ranks or parents, corrections)
    kept: tuple[tuple[str, str, str, str], ...] = ()  # (concept, rank, known name, given name) not changed

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [vars(t) for t in self.rows], "kept": [list(k) for k in self.kept]}


def merge(existing: Sequence[tuple], incoming: Sequence[Taxon], correct: bool = False) -> Merge:
    """Merge ``incoming`` Taxon rows into the ``existing`` taxa rows ``(concept, rank, parent, ...)``.

    Without ``correct``, what the catalog knows is never erased: for each incoming concept the
    merged lineage keeps every known (rank, name) and only adds the ranks it lacks (a known genus
    survives ``--family``; a family given for a species whose genus has none becomes the genus'
    parent). A given name that differs from a known one is reported in ``kept``. With
    ``correct`` the given names replace the known ones at their ranks.
    """
    known = lineages(existing)
    nodes = {str(r[0]): (normalise_rank(r[1]), r[2]) for r in existing}
    given = lineages([(t.concept, t.rank, t.parent) for t in incoming])
    rows: dict[str, Taxon] = {}
    kept: list[tuple[str, str, str, str]] = []
    leaves = [t.concept for t in incoming]
    for concept in dict.fromkeys(leaves):
        old, new = lineage_of(concept, known), given[concept]
        rank = old.rank if old.rank is not None and not (correct and new.rank) else new.rank
        merged = old.as_dict()
        for r, v in new.ranks:
            if r == old.rank or r == rank:
                continue
            if r not in merged:
                merged[r] = v
            elif merged[r] != v:
                if correct:
                    merged[r] = v
                else:
                    kept.append((concept, r, merged[r], v))
        merged.pop(rank, None) if rank else None
        merged = {r: v for r, v in merged.items() if rank is None or rank_key(r) < rank_key(rank)}
        parent = None
        for r, v in sorted(merged.items(), key=lambda kv: rank_key(kv[0])):
            _put(rows, nodes, Taxon(v, r, parent), correct)
            parent = v
        _put(rows, nodes, Taxon(concept, rank, parent), correct, own=True)
    return Merge(tuple(rows.values()), tuple(dict.fromkeys(kept)))


def _put(rows: dict[str, Taxon], nodes: dict, taxon: Taxon, correct: bool, own: bool = False) -> None:
    """Record ``taxon`` unless the catalog already has it so (a node's parent is replaced only by a
    parent on the merged lineage, which keeps every known ancestor, or by a correction)."""
    old = nodes.get(taxon.concept)
    if old == (taxon.rank, taxon.parent):
        return
    if old is not None and not own and not correct:
        rank = old[0] or taxon.rank
        parent = taxon.parent if old[1] is None or taxon.parent is not None else old[1]
        taxon = Taxon(taxon.concept, rank, parent)
        if (rank, parent) == old:
            return
    rows[taxon.concept] = taxon
    nodes[taxon.concept] = (taxon.rank, taxon.parent)


def lineage_rows(rows: Iterable[Mapping[str, str | None]]) -> list[Taxon]:
    """Taxon rows from lineage-CSV rows (a ``concept``/``name`` column plus rank columns)."""
    out: list[Taxon] = []
    for row in rows:
        name = str(row.get("concept") or row.get("name") or "").strip()
        if not name:
            continue
        ranks = {r: v for r, v in row.items() if r and normalise_rank(r) in ALL_RANKS}
        out.extend(chain(name, ranks))
    return out
