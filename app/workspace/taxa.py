"""``oceanid taxa import``: fill or correct the lineages of ingested concepts from a lineage CSV."""

from __future__ import annotations

from pathlib import Path

from app.workspace.results import TaxaImport
from index.catalog import Catalog
from index.errors import InvalidInput
from index.stats import concepts
from index.taxa import read_lineage_csv, upsert


def import_lineages(catalog: Catalog, path: Path) -> TaxaImport:
    """Read ``path`` (a concept column and rank columns) and merge the lineages of the concepts the
    catalog has crops of, correcting what it knew (the file is an explicit correction). Concepts
    without crops are skipped and listed. Raises SourceError (unreadable file), InvalidInput (no
    row names an ingested concept)."""
    taxa = read_lineage_csv(path)
    have = set(concepts(catalog))
    leaves = {t.concept for t in taxa} - {t.parent for t in taxa if t.parent}
    unknown = tuple(sorted(leaves - have))
    keep_leaves = {t.concept for t in taxa} & have
    if not keep_leaves:
        raise InvalidInput(f"{path}: none of its {len(leaves)} concepts has crops in this catalog"
                           + (f" (first: {unknown[0]!r})" if unknown else ""))
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
