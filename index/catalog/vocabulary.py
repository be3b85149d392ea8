"""The small vocabularies of the catalog (species, genus, family, split, source, ...) and the
nearest existing values to a name that matches nothing.

A filter naming ``species="Umbrelia lucida"`` or ``split=trian`` would quietly match no
crop; :func:`check_filter_values` turns that into a one-line :class:`FilterError` that
names the value and suggests the closest existing ones. The closeness is the standard
library's :func:`difflib.get_close_matches` (Ratcliff-Obershelp), which is all a list of a
few hundred names needs; values are compared case-insensitively, as the filter does.
"""

from __future__ import annotations

import difflib
from typing import Any

from index.catalog.filters import SqlFilter
from index.errors import FilterError

SUGGESTIONS = 3  # nearest values named in the error
CUTOFF = 0.6  # difflib's similarity cutoff (its default)


def vocabulary(con: Any, sql_column: str, view: str = "crop_meta") -> list[str]:
    """The distinct non-null values of one trusted column of ``view`` (sorted)."""
    rows = con.execute(f'SELECT DISTINCT "{sql_column}" FROM {view} WHERE "{sql_column}" IS NOT NULL').fetchall()
    return sorted(str(r[0]) for r in rows)


def holds(con: Any, sql_column: str, value: str, view: str = "crop_meta") -> bool:
    """Whether some row of ``view`` has ``value`` in one trusted column (case-insensitive, as
    the filter compares): a probe that stops at the first match, run on every filtered query."""
    return (
        con.execute(f'SELECT 1 FROM {view} WHERE lower("{sql_column}") = ? LIMIT 1', [value.lower()]).fetchone()
        is not None
    )


def nearest(value: str, words: list[str], n: int = SUGGESTIONS) -> list[str]:
    """Up to ``n`` of ``words`` closest to ``value`` (case-insensitive), best first."""
    by_lower = {w.lower(): w for w in words}
    return [by_lower[m] for m in difflib.get_close_matches(value.lower(), list(by_lower), n=n, cutoff=CUTOFF)]


def check_filter_values(con: Any, compiled: SqlFilter, view: str = "crop_meta") -> None:
    """Raise FilterError for the first text value in ``compiled`` that no row of ``view`` holds.

    The message names the column and value and lists the nearest existing values (or, for
    a vocabulary of a few values, all of them).
    """
    for name, sql_column, value in compiled.text_values:
        if holds(con, sql_column, value, view):
            continue
        words = vocabulary(con, sql_column, view)  # read only for a value that matches nothing
        close = nearest(value, words)
        if close:
            hint = "did you mean " + " or ".join(repr(w) for w in close) + "?"
        elif words and len(words) <= 8:
            hint = "existing values: " + ", ".join(repr(w) for w in words)
        else:
            hint = f"no close match among {len(words)} values"
        raise FilterError(f"no crop has {name} {value!r}", hint=hint)
