"""Whole frames and their ground-truth boxes, as the catalog holds them (for detectors and the cascade)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.catalog.catalog import Catalog


@dataclass(frozen=True)
class TruthFrame:
    """One catalogued frame: its file, and each ground-truth box with its concept and split."""

    image_id: int
    path: Path  # absolute
    width: int
    height: int
    boxes: np.ndarray  # (n, 4) float32 x, y, w, h pixels
    concepts: tuple[str, ...]
    splits: tuple[str | None, ...]


def truth_frames(catalog: Catalog, home: Path, sources: tuple[str, ...] | None = None) -> list[TruthFrame]:
    """Every frame with its ground-truth (``origin = truth``) boxes, by image id; frames of the
    ``added`` and ``predicted`` sources are left out, and ``sources`` keeps only those named."""
    sql = (
        "SELECT i.image_id, i.path, i.width, i.height, list(a.x ORDER BY a.annotation_id), "
        "list(a.y ORDER BY a.annotation_id), list(a.w ORDER BY a.annotation_id), "
        "list(a.h ORDER BY a.annotation_id), list(a.concept ORDER BY a.annotation_id), "
        "list(a.split ORDER BY a.annotation_id) "
        "FROM images i LEFT JOIN annotations a ON a.image_id = i.image_id "
        "AND coalesce(a.origin, 'truth') = 'truth' "
        "WHERE i.source NOT IN ('added', 'predicted')"
    )
    params: list = []
    if sources:
        sql += f" AND i.source IN ({', '.join('?' * len(sources))})"
        params += list(sources)
    with catalog.read() as con:
        rows = con.execute(sql + " GROUP BY ALL ORDER BY i.image_id", params).fetchall()
    out = []
    for image_id, path, width, height, xs, ys, ws, hs, concepts, splits in rows:
        keep = [n for n, c in enumerate(concepts) if c is not None]
        boxes = np.asarray([[xs[n], ys[n], ws[n], hs[n]] for n in keep], dtype=np.float32).reshape(-1, 4)
        out.append(
            TruthFrame(
                int(image_id),
                Path(home) / path,
                int(width),
                int(height),
                boxes,
                tuple(concepts[n] for n in keep),
                tuple(splits[n] for n in keep),
            )
        )
    return out
