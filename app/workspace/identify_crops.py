"""Identify catalog crops from their stored vectors (``POST /identify`` with crop ids): the catalog
already holds each crop's vector in every space it was embedded in, so nothing is decoded or embedded
again; the answers are :func:`app.workspace.identify.answer_vectors`' like any image's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from app.workspace.engine import Engine
from app.workspace.identification import Identification
from app.workspace.identify import answer_vectors, identify, labels_of
from index.catalog.catalog import Catalog
from index.catalog.lookup import crop_files, crop_vectors
from index.errors import InvalidInput

if TYPE_CHECKING:
    from app.workspace.spaces import TwoSpaces


def identify_crops(
    engine: Engine,
    tree: dict,
    spaces: TwoSpaces | None,
    catalog: Catalog,
    home: Path,
    crop_ids: Sequence[int],
    k: int = 5,
    names: Sequence[str] | None = None,
    decode: str = "probable",
    neighbours: int = 0,
) -> list[Identification]:
    """:func:`identify` of catalog crops from their stored vectors (both spaces' where the model has
    two): nothing is decoded or embedded again; the crop file's header gives its size (the box and the
    tiny-image warning). A crop without a stored vector (cut, not yet embedded) is identified from its
    file. Raises NotFound for an id the catalog does not hold (or whose crop was never cut)."""
    if isinstance(k, bool) or k < 1:
        raise InvalidInput(f"--k must be at least 1, got {k}")
    if isinstance(neighbours, bool) or neighbours < 0:
        raise InvalidInput(f"--neighbours must be 0 or more, got {neighbours}")
    ids = [int(c) for c in crop_ids]
    files = crop_files(catalog, home, ids)
    names = list(names) if names else [f"crop {c}" for c in ids]
    stored = _stored_vectors(catalog, engine.model_id, ids)
    general = _stored_vectors(catalog, spaces.general.model_id, ids) if spaces is not None else {}
    out: list[Identification | None] = [None] * len(ids)
    rows, where = [], []
    for n, (crop, file) in enumerate(zip(ids, files, strict=True)):
        size = _header_size(file) if crop in stored and (spaces is None or crop in general) else None
        if size is not None:
            rows.append((names[n], str(Path(file).absolute()), *size))
            where.append(n)
    if where:
        batch = np.stack([stored[ids[n]] for n in where])
        both = np.stack([general[ids[n]] for n in where]) if spaces is not None else None
        table = engine.rank_table(tree) if tree is not None else None
        answered = answer_vectors(
            engine, batch, rows, k, spaces, both, table, None, decode, neighbours, labels_of(catalog)
        )
        for n, answer in zip(where, answered, strict=True):
            out[n] = answer
    rest = [n for n in range(len(ids)) if out[n] is None]  # no stored vector (or no readable file): as files
    if rest:
        from_files = identify(
            engine,
            [files[n] for n in rest],
            [names[n] for n in rest],
            k,
            tree=tree,
            decode_method=decode,
            neighbours=neighbours,
            labels=labels_of(catalog),
            spaces=spaces,
        )
        for n, answer in zip(rest, from_files, strict=True):
            out[n] = answer
    return out


def _stored_vectors(catalog: Catalog, model_id: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """crop id -> its stored (d,) float32 vector in ``model_id``'s space, for those that have one."""
    got, vectors = crop_vectors(catalog, model_id, ids)
    return {int(i): np.ascontiguousarray(v, dtype=np.float32) for i, v in zip(got, vectors, strict=True)}


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header (no pixels decoded), or None when it cannot be read."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError):
        return None
