"""Does the live index generation hold what the catalog says it should?

The catalog is the source of truth; a generation's manifest records how many vectors it
holds (``count``, the index's own total) and a digest of the ids and vectors it was built
from (``content``, :func:`index.catalog.embeddings.content_digest`). ``index build``
rebuilds when the live generation disagrees with the catalog on either, and ``index
verify`` of the live generation also compares the index's own ids with the catalog's and
says in one line what disagrees (:class:`index.errors.IndexMismatch`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from index.catalog.catalog import Catalog
from index.catalog.embeddings import content_digest, load_embeddings
from index.errors import IndexMismatch
from index.home import Home

if TYPE_CHECKING:
    from index.vectors.generations import Manifest

REBUILD_HINT = "`oceanid index build` rebuilds it from the catalog"


def disagreement(
    generation: str, manifest: Manifest, ids: np.ndarray, content: str, index_ids: np.ndarray | None = None
) -> str | None:
    """One line saying how ``generation`` disagrees with the catalog's vectors (``ids`` (n,)
    int64 and their ``content`` digest), or None when it agrees. ``index_ids``: the ids the
    index itself holds, when it was opened (a manifest whose digest was copied from the
    catalog cannot hide a missing vector from them)."""
    if manifest.count != len(ids):
        return f"{generation} holds {manifest.count} vectors, the catalog {len(ids)}"
    if index_ids is not None:
        missing = np.setdiff1d(ids, index_ids).size
        extra = np.setdiff1d(index_ids, ids).size
        if missing or extra:
            return f"{generation} lacks {missing} of the catalog's vectors and holds {extra} it does not list"
    if manifest.content != content:
        if not manifest.content:
            return f"{generation} does not record which vectors it was built from"
        return f"{generation} was built from other vectors than the catalog holds now"
    return None


def check_live(catalog: Catalog, home: Home, model_id: str, name: str, config_hash: str, dim: int) -> Manifest:
    """Verify the live generation ``name`` like any load (files, sha256, model) and check that it
    holds exactly the catalog's vectors (count, the index's own ids, content digest). Returns its
    manifest.

    Raises:
        IndexMismatch: it does not verify, or it disagrees with the catalog (one line naming how).
    """
    from index.vectors.generations import load_generation, model_dir, read_manifest

    index = load_generation(home.root, model_id, name, config_hash, dim)
    manifest = read_manifest(model_dir(home.root, model_id) / name)
    ids, vectors = load_embeddings(catalog, model_id)
    problem = disagreement(name, manifest, ids, content_digest(ids, vectors), index.ids())
    if problem:
        raise IndexMismatch(f"the live generation disagrees with the catalog: {problem}", hint=REBUILD_HINT)
    return manifest
