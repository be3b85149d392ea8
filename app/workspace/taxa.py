"""``oceanid taxa import``: fill or correct the lineages of ingested concepts from a lineage CSV;
a taxon's place in the tree and its nearest relatives (the explorer's Species page)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.catalog.catalog import Catalog
from index.catalog.stats import concepts
from index.catalog.taxa import lineage, read_lineage_csv, tree, upsert
from index.errors import InvalidInput
from index.records import Taxon
from index.taxonomy import RANKS, Lineage, distance

if TYPE_CHECKING:
    from app.workspace.engine_cache import Engines
    from app.workspace.writer import HomeWriter


@dataclass(frozen=True)
class TaxaImport:
    """What ``oceanid taxa import`` did."""

    rows: int  # lineage rows read
    written: int  # taxa rows inserted or changed
    unknown: tuple[str, ...] = ()  # concepts named in the file that the catalog has no crop of (skipped)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "written": self.written, "unknown": list(self.unknown)}


@dataclass(frozen=True)
class Relative:
    """A concept of the catalog near another in the tree."""

    name: str
    rank: str | None
    distance: int  # taxonomic distance (FathomNet 2025, 0..12)
    shared: str | None  # the deepest standard-rank taxon both lie under (None: none named)
    shared_rank: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TreePlace:
    """A taxon's place in the tree: its lineage and its nearest relatives among the concepts with crops."""

    name: str
    rank: str | None
    lineage: dict[str, str]  # rank -> name, top down (ranks outside the 7 included)
    relatives: tuple[Relative, ...] = ()  # nearest first

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rank": self.rank,
            "lineage": dict(self.lineage),
            "relatives": [r.to_dict() for r in self.relatives],
        }


def import_lineages(catalog: Catalog, path: Path) -> TaxaImport:
    """Read ``path`` (a concept column and rank columns) and merge the lineages of the concepts the
    catalog has crops of, correcting what it knew (the file is an explicit correction). Concepts
    without crops are skipped and listed. Raises SourceError (unreadable file), InvalidInput (no
    row names an ingested concept)."""
    return merge_lineages(catalog, read_lineage_csv(path), path)


def merge_lineages(catalog: Catalog, taxa: list[Taxon], path: Path) -> TaxaImport:
    """Merge lineage rows already read from ``path`` (:func:`read_lineage_csv`) for the concepts the
    catalog has crops of; what ``taxa import`` and ``ingest folders --lineages`` both do."""
    have = set(concepts(catalog))
    leaves = {t.concept for t in taxa} - {t.parent for t in taxa if t.parent}
    unknown = tuple(sorted(leaves - have))
    keep_leaves = {t.concept for t in taxa} & have
    if not keep_leaves:
        raise InvalidInput(
            f"{path}: none of its {len(leaves)} concepts has crops in this catalog"
            + (f" (first: {unknown[0]!r})" if unknown else "")
        )
    wanted = _closure(taxa, keep_leaves)
    result = upsert(catalog, [t for t in taxa if t.concept in wanted], correct=True)
    return TaxaImport(rows=len(leaves), written=len(result.rows), unknown=unknown)


def _closure(taxa: list, leaves: set[str]) -> set[str]:
    parent = {t.concept: t.parent for t in taxa}
    out: set[str] = set()
    for leaf in leaves:
        cur = leaf
        while cur is not None and cur not in out:
            out.add(cur)
            cur = parent.get(cur)
    return out


def shared(a: Lineage, b: Lineage) -> tuple[str | None, str | None]:
    """(taxon, rank) of the deepest standard rank at which both lineages name the same taxon."""
    common = [(a.at(r), r) for r in RANKS if a.at(r) is not None and a.at(r) == b.at(r)]
    return common[-1] if common else (None, None)


def place_in_tree(catalog: Catalog, name: str, top: int = 5) -> TreePlace:
    """``name``'s lineage and the ``top`` concepts with crops nearest it by taxonomic distance
    (ties by name). Raises NotFound (naming close names) when the catalog lacks the taxon."""
    own = lineage(catalog, name)
    lineages = tree(catalog)
    others = [lineages[c] for c in concepts(catalog) if c != name and c in lineages]
    ranked = sorted(others, key=lambda o: (distance(own, o), o.concept))[: max(0, top)]
    return TreePlace(
        name,
        own.rank,
        own.as_dict(),
        tuple(Relative(o.concept, o.rank, distance(own, o), *shared(own, o)) for o in ranked),
    )


def import_lineages_as_writer(writer: HomeWriter, engines: Engines, catalog: Catalog, path: Path) -> TaxaImport:
    """:func:`import_lineages` under the home's writer lock; the loaded engines are forgotten
    afterwards (their taxa tree changed), also on failure."""
    with writer:
        try:
            return import_lineages(catalog, Path(path))
        finally:
            engines.engines.clear()
