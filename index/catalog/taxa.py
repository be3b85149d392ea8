"""The catalog's taxa: reading the tree, merging new taxonomy in, undoing what ``species add`` changed.

The maths (lineages, merging, distance) is :mod:`index.taxonomy`; this module is
its SQL side. Merging never erases what the catalog knows unless asked to
correct (:func:`index.taxonomy.merge`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from index.catalog.catalog import Catalog
from index.errors import NotFound, SourceError
from index.records import Taxon
from index.taxon_rows import Merge, lineage_rows, merge
from index.taxonomy import Lineage, lineages


def taxa_table(catalog: Catalog) -> list[tuple]:
    """Every taxa row (concept, rank, parent, holdout_hint); [] before the catalog exists."""
    if not catalog.exists():
        return []
    with catalog.read() as con:
        return con.execute("SELECT concept, rank, parent, holdout_hint FROM taxa ORDER BY concept").fetchall()


def tree(catalog: Catalog) -> dict[str, Lineage]:
    """Every concept's lineage (``index.taxonomy.lineages`` over the taxa table)."""
    return lineages(taxa_table(catalog))


def lineage(catalog: Catalog, name: str) -> Lineage:
    """The lineage of one taxon. Raises NotFound (naming close names) when the catalog lacks it."""
    import difflib

    known = tree(catalog)
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3)
        raise NotFound(f"no taxon {name!r} in the catalog" + (f"; did you mean {', '.join(close)}?" if close else ""))
    return known[name]


def upsert(
    catalog: Catalog,
    taxa: Iterable[Taxon],
    hints: dict[str, str] | None = None,
    *,
    correct: bool = False,
    undo_for: str | None = None,
) -> Merge:
    """Merge ``taxa`` into the catalog in one transaction and return what was written and kept.

    ``hints``: concept -> holdout hint (the synthetic reef's near | far | other). ``undo_for``:
    record the rows as they were before, so :func:`undo` (``species remove``) restores them.
    """
    taxa, hints = list(taxa), dict(hints or {})
    if not taxa and not hints:
        return Merge(())
    catalog.ensure_schema()
    with catalog.write() as con:
        existing = con.execute("SELECT concept, rank, parent, holdout_hint FROM taxa").fetchall()
        result = merge(existing, taxa, correct=correct)
        before = {r[0]: r for r in existing}
        if undo_for is not None:
            for t in result.rows:
                old = before.get(t.concept)
                con.execute(
                    "INSERT OR IGNORE INTO taxa_undo VALUES (?, ?, ?, ?, ?, ?)",
                    [undo_for, t.concept, old is not None, *(old[1:] if old else (None, None, None))],
                )
        for t in result.rows:
            con.execute(
                """INSERT INTO taxa VALUES (?, ?, ?, NULL) ON CONFLICT (concept) DO UPDATE SET
                   rank = excluded.rank, parent = excluded.parent""",
                [t.concept, t.rank, t.parent],
            )
        for concept, hint in hints.items():
            con.execute(
                """INSERT INTO taxa VALUES (?, NULL, NULL, ?) ON CONFLICT (concept) DO UPDATE SET
                           holdout_hint = coalesce(excluded.holdout_hint, taxa.holdout_hint)""",
                [concept, hint],
            )
    return result


def undo(catalog: Catalog, added: str) -> int:
    """Put back the taxa rows that the ``species add`` of ``added`` inserted or changed; returns how many."""
    if not catalog.exists():
        return 0
    with catalog.write() as con:
        rows = con.execute(
            "SELECT concept, existed, rank, parent, holdout_hint FROM taxa_undo WHERE added = ?", [added]
        ).fetchall()
        for concept, existed, rank, parent, hint in rows:
            con.execute("DELETE FROM taxa WHERE concept = ?", [concept])
            if existed:
                con.execute("INSERT INTO taxa VALUES (?, ?, ?, ?)", [concept, rank, parent, hint])
        con.execute("DELETE FROM taxa_undo WHERE added = ?", [added])
    return len(rows)


def read_lineage_csv(path: Path) -> list[Taxon]:
    """Taxon rows from a lineage CSV: a ``concept`` (or ``name``) column and any rank columns
    (kingdom, phylum, class, order, family, subfamily, genus, species, ...). Raises SourceError."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"{path}: cannot read the lineage CSV ({exc})") from None
    if not rows or not ({"concept", "name"} & set(rows[0])):
        raise SourceError(
            f"{path}: a lineage CSV needs a concept column and rank columns, "
            "e.g. concept,kingdom,phylum,class,order,family,genus"
        )
    return lineage_rows(rows)
