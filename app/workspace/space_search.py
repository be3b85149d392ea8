"""``search`` in a model's tuned, general or fused vector space (:mod:`app.workspace.spaces`): the tuned
and general spaces search their own index; the fused space rescores both spaces' candidates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    from app.workspace.engine import Engine
    from app.workspace.engine_cache import Engines
    from app.workspace.spaces import TwoSpaces
    from index.catalog.catalog import Catalog
    from index.home import Home

#: fused search: each space's index gives CANDIDATES x k neighbours, rescored by the fused cosine
CANDIDATES = 8


def search_fused(
    spaces: TwoSpaces, catalog: Catalog, home: Path, query, k: int = 10, allowed: np.ndarray | None = None
) -> list:
    """The k crops nearest ``query`` (an image or a catalog crop id) by the fused cosine
    (``w cos_t + (1-w) cos_g`` of the centred spaces): the union of both spaces' ``CANDIDATES * k``
    nearest crops (filtered inside FAISS by ``allowed``), rescored exactly from their stored vectors.
    A crop that is among neither space's candidates is missed (measured: bench/two_spaces.py recall@1)."""
    from app.workspace.identify import decode
    from index.catalog.lookup import crop_vector, crop_vectors, hits_metadata
    from index.vectors.faiss_calls import Hit

    tuned, general = spaces.tuned, spaces.general
    exclude = None
    if isinstance(query, (int, np.integer)):
        exclude = int(query)
        t, g = crop_vector(catalog, tuned.model_id, exclude), crop_vector(catalog, general.model_id, exclude)
    else:
        t, g = spaces.embed([decode(query, "query")])
    if allowed is not None and exclude is not None:
        allowed = allowed[allowed != exclude]
    if allowed is not None and allowed.size == 0:
        return []
    wide = CANDIDATES * k + (exclude is not None)
    ids = {h.id for h in tuned.index.search(t, wide, allowed_ids=allowed)[0]}
    ids |= {h.id for h in general.index.search(g, wide, allowed_ids=allowed)[0]}
    ids.discard(exclude)
    ti, tv = crop_vectors(catalog, tuned.model_id, sorted(ids))
    gi, gv = crop_vectors(catalog, general.model_id, sorted(ids))
    both = np.intersect1d(ti, gi)
    if both.size == 0:
        return []
    fusion = spaces.decision.fusion
    q = fusion.fuse(t, g)
    rows = fusion.fuse(tv[np.searchsorted(ti, both)], gv[np.searchsorted(gi, both)])
    scores = (rows @ q.T).ravel()
    order = np.argsort(-scores, kind="stable")[:k]
    return hits_metadata(catalog, home, [Hit(int(both[i]), float(scores[i])) for i in order])


#: ``search``'s default space where a model has both (chosen by recall@1 across tracks, bench/RESULTS.md)
SEARCH_SPACE = "fused"


def search_space(
    tuned: Engine,
    spaces_of,
    catalog: Catalog,
    home: Home,
    query,
    k: int,
    where: str | None,
    allowed: np.ndarray | None,
    space: str | None,
    search_tuned,
) -> list:
    """Search in ``space`` (None: :data:`SEARCH_SPACE` where the model has two spaces, else tuned).

    Raises:
        InvalidInput: an unknown space, or general / fused asked of a model with one space, or of an embedding.
    """
    from index.errors import InvalidInput
    from index.scoring.fusion import SPACES

    if space is not None and space not in SPACES:
        raise InvalidInput(f"unknown space {space!r}; valid: {', '.join(SPACES)}")
    given_vector = isinstance(query, np.ndarray)
    spaces = None if space == "tuned" or (space is None and given_vector) else spaces_of()
    chosen = space or (SEARCH_SPACE if spaces is not None else "tuned")
    if chosen == "tuned":
        return search_tuned(tuned, catalog, home.root, query, k=k, where=where, allowed=allowed)
    if spaces is None:
        raise InvalidInput(
            f"model {tuned.model_id} has one vector space (tuned), not {chosen}",
            hint="`oceanid embed` (without --no-general-space) and `oceanid index build` add the general space",
        )
    if given_vector:
        raise InvalidInput(f"an embedding is a tuned-space vector; search the {chosen} space with an image or crop id")
    if chosen == "general":
        return search_tuned(spaces.general, catalog, home.root, query, k=k, where=where, allowed=allowed)
    return search_fused(spaces, catalog, home.root, query, k, allowed)


def search_home(
    engines: Engines,
    catalog: Catalog,
    home: Home,
    query,
    k: int,
    where: str | None,
    model: str | None,
    space: str | None,
) -> list:
    """:func:`search_space` with the model's loaded engines; a filter's ids are read again only when
    the catalog changed (``engines.reads``)."""
    from app.workspace.identify import search
    from index.catalog.lookup import allowed_ids

    allowed = None
    if where and where.strip():
        allowed = engines.reads.get(("allowed", where), lambda: allowed_ids(catalog, where))
    spaces_of = lambda: engines.spaces(model)  # noqa: E731 - loaded only when the space needs both
    return search_space(engines.engine(model), spaces_of, catalog, home, query, k, where, allowed, space, search)
