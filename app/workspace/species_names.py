"""Species names as a user types them: one species per name whatever its case, a near name
suggested for a typo, and examples that are crops of another species pointed out.

Used by :mod:`app.workspace.species` (``species add`` / ``species remove``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from index.catalog.catalog import Catalog
from index.catalog.lookup import hits_metadata
from index.errors import InvalidInput, NotFound

#: An example whose nearest catalog crop is at least this similar is taken to be that crop (a
#: copy of it, or the crop file itself): cut again from a copy, a crop embeds at >= 0.99.
SAME_CROP = 0.99


def key(name: str) -> str:
    """What two names must share to be one species: case and runs of spaces ignored."""
    return " ".join(name.split()).casefold()


def check_new_name(name: str, existing: Iterable[str]) -> None:
    """Refuse a new species whose name is an existing one's but for case or spacing
    ("umbrellia lucida" beside "Umbrellia lucida"). Raises InvalidInput naming the existing one."""
    same = sorted({e for e in existing if key(e) == key(name) and e != name})
    if same:
        raise InvalidInput(
            f"species {name!r} is {same[0]!r} already (the names differ only in case or spacing); "
            f"use {same[0]!r}, or a name of its own"
        )


def not_found(name: str, known: Sequence[str], what: str = "species") -> NotFound:
    """The error for a name that is none of ``known``: the near names (difflib) when there are
    any, never the whole list."""
    by_key = {key(k): k for k in known}
    if key(name) in by_key:
        return NotFound(f"no {what} {name!r}", hint=f"did you mean {by_key[key(name)]!r}?")
    near = difflib.get_close_matches(key(name), list(by_key), n=3, cutoff=0.6)
    if near:
        return NotFound(f"no {what} {name!r}", hint="did you mean " + " or ".join(repr(by_key[n]) for n in near) + "?")
    return NotFound(
        f"no {what} {name!r} (none of the {len(known)} known is near it)", hint="`oceanid models` lists the species"
    )


def resolve_name(name: str, known: Sequence[str], what: str = "species") -> str:
    """``name`` when it is one of ``known``; the one known name it matches but for case or spacing;
    else raises :func:`not_found`."""
    if name in known:
        return name
    same = [k for k in known if key(k) == key(name)]
    if len(same) == 1:
        return same[0]
    raise not_found(name, known, what)


def labelled_elsewhere(catalog: Catalog, home: Path, index, vectors: np.ndarray, name: str) -> tuple[str, ...]:
    """One warning per other species some of the examples (``vectors`` (n, d) float32, their
    embeddings) are crops of: an example whose nearest crop in ``index`` (the live index) is at
    least :data:`SAME_CROP` similar and labelled another species."""
    if len(vectors) == 0:
        return ()
    nearest = [hits[0] for hits in index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1) if hits]
    same = [h for h in nearest if h.score >= SAME_CROP]
    labels = {h.annotation_id: h.species for h in hits_metadata(catalog, home, same)}
    counts: dict[str, int] = {}
    for h in same:
        other = labels.get(h.id)
        if other is not None and key(other) != key(name):
            counts[other] = counts.get(other, 0) + 1
    return tuple(
        f"{n} of {len(vectors)} examples are crops already labelled {other!r} (cosine >= {SAME_CROP} "
        f"to one); check that they show {name!r}"
        for other, n in sorted(counts.items())
    )
