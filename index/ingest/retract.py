"""Reading and taking back the crops of one source image: what an annotation tool changes.

An annotation tool (Label Studio) sends one image with its boxes per annotation; oceanid
keeps it as one ``images`` row keyed by (source, source_id) with its truth crops. When the
annotation is edited or deleted, :func:`retract_image` deletes that row, its crops and
their vectors in ONE transaction and returns the files nobody uses any more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.catalog.catalog import Catalog


@dataclass(frozen=True)
class ImageBox:
    """One stored crop of a source image: its annotation id, concept and pixel box (x, y, w, h)."""

    annotation_id: int
    concept: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class Retracted:
    """What :func:`retract_image` deleted."""

    ids: np.ndarray  # (n,) int64 annotation ids
    concepts: tuple[str, ...]  # their concepts, one per id
    crop_paths: tuple[str, ...]  # their crop files, relative to the home
    image_paths: tuple[str, ...]  # stored frames no catalog row uses any more, relative to the home


def image_boxes(catalog: Catalog, source: str, source_id: str) -> list[ImageBox] | None:
    """The crops of the image (``source``, ``source_id``) by id; None when no such image is stored."""
    if not catalog.exists():
        return None
    with catalog.read() as con:
        found = con.execute(
            "SELECT image_id FROM images WHERE source = ? AND source_id = ?", [source, source_id]
        ).fetchone()
        if found is None:
            return None
        rows = con.execute(
            "SELECT annotation_id, concept, x, y, w, h FROM annotations WHERE image_id = ? ORDER BY annotation_id",
            [found[0]],
        ).fetchall()
    return [ImageBox(int(a), str(c), (float(x), float(y), float(w), float(h))) for a, c, x, y, w, h in rows]


def concept_crops(catalog: Catalog, source: str, concept: str) -> list[tuple[int, str]]:
    """(annotation_id, crop_path) of the cut crops of ``concept`` from ``source``, by id."""
    if not catalog.exists():
        return []
    with catalog.read() as con:
        return con.execute(
            "SELECT a.annotation_id, a.crop_path FROM annotations a JOIN images i USING (image_id) "
            "WHERE i.source = ? AND a.concept = ? AND a.crop_path IS NOT NULL ORDER BY 1",
            [source, concept],
        ).fetchall()


def source_ids(catalog: Catalog, source: str) -> np.ndarray:
    """Annotation ids ``(n,) int64`` of every crop from ``source`` (sorted)."""
    if not catalog.exists():
        return np.zeros(0, dtype=np.int64)
    with catalog.read() as con:
        rows = con.execute(
            "SELECT a.annotation_id FROM annotations a JOIN images i USING (image_id) WHERE i.source = ? ORDER BY 1",
            [source],
        ).fetchall()
    return np.asarray([r[0] for r in rows], dtype=np.int64)


def source_ids_like(catalog: Catalog, source: str, prefix: str) -> list[str]:
    """The source ids of ``source``'s images that start with ``prefix`` (sorted)."""
    if not catalog.exists():
        return []
    with catalog.read() as con:
        rows = con.execute(
            "SELECT source_id FROM images WHERE source = ? AND starts_with(source_id, ?) ORDER BY 1", [source, prefix]
        ).fetchall()
    return [r[0] for r in rows]


def retract_image(catalog: Catalog, source: str, source_id: str) -> Retracted:
    """Delete the image (``source``, ``source_id``), its crops and their vectors (every model) in
    ONE transaction. Nothing stored: an empty :class:`Retracted`."""
    with catalog.write() as con:
        found = con.execute(
            "SELECT image_id, path FROM images WHERE source = ? AND source_id = ?", [source, source_id]
        ).fetchone()
        if found is None:
            return Retracted(np.zeros(0, dtype=np.int64), (), (), ())
        image_id, path = found
        rows = con.execute(
            "SELECT annotation_id, concept, crop_path FROM annotations WHERE image_id = ? ORDER BY annotation_id",
            [image_id],
        ).fetchall()
        ids = [r[0] for r in rows]
        con.execute("DELETE FROM embeddings WHERE annotation_id IN (SELECT unnest(?))", [ids])
        con.execute("DELETE FROM annotations WHERE image_id = ?", [image_id])
        con.execute("DELETE FROM images WHERE image_id = ?", [image_id])
        shared = con.execute("SELECT count(*) FROM images WHERE path = ?", [path]).fetchone()[0]
    return Retracted(
        np.asarray(ids, dtype=np.int64),
        tuple(r[1] for r in rows),
        tuple(r[2] for r in rows if r[2]),
        () if shared else (path,),
    )
