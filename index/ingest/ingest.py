"""Writing normalised source records into the catalog, the image store and the crop cache.

Every source (synthetic, COCO, folders, FathomNet) produces :class:`ImageRecord`
objects; :func:`ingest_records` validates each frame and box, stores the frame
under ``images/`` named by its content hash, inserts rows in chunked
transactions, and caches crops. Bad items are skipped with a one-line reason in
the :class:`IngestReport`; the rest of the batch still lands. Re-ingesting the
same data adds nothing twice, and a run killed half-way is completed by
re-running it (crops missing from an earlier run are cut then).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from PIL import Image
from tqdm import tqdm

from index.catalog.catalog import Catalog
from index.errors import BadImage, InvalidInput
from index.files import copy_atomic, file_sha256
from index.home import Home
from index.imaging import open_image, to_rgb
from index.ingest.crops import CropConfig, clip_box, crop_relpath, cut_crop, save_atomic
from index.records import SUPPORT, BoxRecord, ImageRecord, IngestReport

log = logging.getLogger(__name__)

IMAGE_COLUMNS = (
    "source",
    "source_id",
    "sha256",
    "path",
    "width",
    "height",
    "depth_m",
    "latitude",
    "longitude",
    "timestamp",
    "temperature_c",
    "salinity",
    "oxygen_ml_l",
    "imaging_type",
    "url",
)


@dataclass
class _Pending:
    record: ImageRecord
    image_id: int | None  # set when the frame is already in the catalog
    row: dict | None  # image row to insert (new frames)
    boxes: list[tuple[dict, Image.Image]]  # annotation row + its cut crop


def _store_frame(path: Path, sha: str, home: Path) -> str:
    """Copy a frame into images/ named by its hash (atomically); return the relative path."""
    rel = f"images/{sha[:2]}/{sha}{path.suffix.lower() or '.img'}"
    dest = home / rel
    if not dest.exists():
        copy_atomic(path, dest)
    return rel


class _Known:
    """What the catalog already holds, loaded once per ingest run."""

    def __init__(self, catalog: Catalog, source: str) -> None:
        with catalog.read() as con:
            self.images = {
                sid: (iid, w, h)
                for sid, iid, w, h in con.execute(
                    "SELECT source_id, image_id, width, height FROM images WHERE source = ?", [source]
                ).fetchall()
            }
            self.hashes = dict(con.execute("SELECT sha256, source_id FROM images").fetchall())
            self.boxes = {
                (iid, c, round(x, 2), round(y, 2), round(w, 2), round(h, 2))
                for iid, c, x, y, w, h in con.execute(
                    "SELECT image_id, concept, x, y, w, h FROM annotations"
                ).fetchall()
            }


ADDED = "added"  # the source of the examples of a species added without retraining
FULL_FRAME = (0.0, 0.0, 1e12, 1e12)  # clipped to the image: the whole example is the crop
TINY_SIDE = 16  # px: an image with a shorter side is upscaled so much that its answer is unreliable
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def tiny_image_warning(width: int, height: int) -> str | None:
    """One line for an image under ``TINY_SIDE`` px on a side (the encoder sees it blown up), else None."""
    if min(width, height) >= TINY_SIDE:
        return None
    return f"image is only {width}x{height} px (under {TINY_SIDE}): upscaled, so the answer is unreliable"


def check_source_name(name: str) -> str:
    """A user-given source name (``--source-name survey-2024``), checked. Raises InvalidInput."""
    if not SOURCE_NAME.match(name or "") or name == ADDED:
        raise InvalidInput(
            f"source name {name!r} must be 1-64 letters, digits, '.', '_' or '-' "
            f"(and not {ADDED!r}, the examples of added species)"
        )
    return name


def _whole_image(box: BoxRecord, width: int, height: int) -> tuple[float, float, float, float]:
    """A box as given, with a whole-frame box (``FULL_FRAME``) written as the image's real size,
    so a skip message shows ``(0, 0, 1, 1)`` for a 1x1 image, not ``(0, 0, 1e12, 1e12)``."""
    if (box.x, box.y) == (0, 0) and box.w >= FULL_FRAME[2] and box.h >= FULL_FRAME[3]:
        return (0, 0, width, height)
    return (box.x, box.y, box.w, box.h)


def _prepare(record: ImageRecord, known: _Known, home: Path, crop: CropConfig, report: IngestReport) -> _Pending | None:
    tail = record.source_id.rsplit("::", 1)[-1]
    name = tail if tail.endswith(Path(record.path).name) else f"{Path(record.path).name} (id {tail})"
    existing = known.images.get(record.source_id)
    try:
        image = open_image(record.path)
    except BadImage as exc:
        report.skip(name, str(exc))
        return None
    warning = tiny_image_warning(image.width, image.height)
    if warning and existing is None:
        report.note(name, warning)
    if existing is None:
        sha = file_sha256(record.path)
        if sha in known.hashes:  # kept (a data set may list a frame twice); stored once on disk
            report.note(name, f"same bytes as {known.hashes[sha]} (file stored once)")
        else:
            known.hashes[sha] = record.source_id.rsplit("::", 1)[-1]
        row = {c: getattr(record, c, None) for c in IMAGE_COLUMNS}
        row.update(
            sha256=sha,
            path=_store_frame(Path(record.path), sha, home),
            width=image.width,
            height=image.height,
            url=record.url,
        )
        pending = _Pending(record, None, row, [])
        image_id = None
    else:
        image_id = existing[0]
        pending = _Pending(record, image_id, None, [])
    seen: set[tuple] = set()
    for n, box in enumerate(record.boxes):
        item = f"{name} box {box.source_id or n}"
        if not box.concept or not str(box.concept).strip():
            report.skip(item, "box has no concept name")
            continue
        try:
            x, y, w, h = clip_box(
                _whole_image(box, image.width, image.height), image.width, image.height, crop.min_side
            )
            crop_image = cut_crop(image, (x, y, w, h), crop)
        except InvalidInput as exc:
            report.skip(item, str(exc))
            continue
        key = (image_id, box.concept, round(x, 2), round(y, 2), round(w, 2), round(h, 2))
        if key in seen or (image_id is not None and key in known.boxes):
            report.crops_existing += 1
            continue
        seen.add(key)
        pending.boxes.append(
            (
                {
                    "concept": box.concept.strip(),
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "source_id": box.source_id,
                    "group_key": box.group_key or f"{record.source}:{record.source_id}",
                    "split": box.split,
                    "split_pinned": box.split is not None,
                    "origin": box.origin,
                    "detection_score": box.detection_score,
                },
                crop_image,
            )
        )
    return pending


def _flush(catalog: Catalog, home: Path, chunk: list[_Pending], report: IngestReport) -> None:
    if not chunk:
        return
    crops: list[tuple[int, Image.Image]] = []
    with catalog.write() as con:
        for pending in chunk:
            if pending.row is not None:
                cols = ", ".join(f'"{c}"' for c in IMAGE_COLUMNS)
                marks = ", ".join("?" for _ in IMAGE_COLUMNS)
                pending.image_id = con.execute(
                    f"INSERT INTO images ({cols}) VALUES ({marks}) RETURNING image_id",
                    [pending.row[c] for c in IMAGE_COLUMNS],
                ).fetchone()[0]
                report.images_added += 1
            else:
                report.images_existing += 1
        rows = [(p.image_id, b) for p in chunk for b, _ in p.boxes]
        images = [img for p in chunk for _, img in p.boxes]
        if rows:
            table = pa.table(
                {
                    "image_id": pa.array([i for i, _ in rows], pa.int64()),
                    **{
                        k: [b[k] for _, b in rows]
                        for k in (
                            "concept",
                            "x",
                            "y",
                            "w",
                            "h",
                            "source_id",
                            "group_key",
                            "split",
                            "split_pinned",
                            "origin",
                        )
                    },
                    "detection_score": pa.array([b["detection_score"] for _, b in rows], pa.float64()),
                }
            )
            con.register("incoming", table)
            ids = con.execute(
                """INSERT INTO annotations (image_id, concept, x, y, w, h, source_id, group_key, split, split_pinned,
                                           origin, detection_score)
                   SELECT image_id, concept, x, y, w, h, source_id, group_key, split, split_pinned, origin,
                          detection_score FROM incoming
                   RETURNING annotation_id"""
            ).fetchall()
            con.unregister("incoming")
            crops = [(aid, img) for (aid,), img in zip(ids, images, strict=True)]
    for aid, img in crops:
        save_atomic(img, home / crop_relpath(aid))
    if crops:
        with catalog.write() as con:
            con.register(
                "cut",
                pa.table(
                    {
                        "annotation_id": [a for a, _ in crops],
                        "crop_path": [crop_relpath(a) for a, _ in crops],
                    }
                ),
            )
            con.execute(
                "UPDATE annotations SET crop_path = cut.crop_path FROM cut "
                "WHERE annotations.annotation_id = cut.annotation_id"
            )
    report.crops_added += len(crops)


def ingest_records(
    catalog: Catalog,
    home: Path,
    source: str,
    records: Iterable[ImageRecord],
    *,
    crop: CropConfig = CropConfig(),
    report: IngestReport | None = None,
    chunk_size: int = 128,
    total: int | None = None,
    progress: bool = False,
) -> IngestReport:
    """Validate and store ``records`` of one source; returns the report of what happened."""
    catalog.ensure_schema()
    report = report or IngestReport(source)
    repair_crops(catalog, home, crop, report)
    known = _Known(catalog, source)
    chunk: list[_Pending] = []
    for record in tqdm(records, total=total, desc=f"ingest {source}", unit="img", disable=not progress):
        pending = _prepare(record, known, home, crop, report)
        if pending is None:
            continue
        chunk.append(pending)
        if len(chunk) >= chunk_size:
            _flush(catalog, home, chunk, report)
            chunk = []
    _flush(catalog, home, chunk, report)
    log.info(
        "ingest %s: %d images added, %d already there, %d crops added, %d skipped",
        source,
        report.images_added,
        report.images_existing,
        report.crops_added,
        len(report.skipped),
    )
    return report


def repair_crops(catalog: Catalog, home: Path, crop: CropConfig, report: IngestReport | None = None) -> int:
    """Cut crops that an interrupted run left uncut or that were deleted; returns how many."""
    if not catalog.exists():
        return 0
    with catalog.read() as con:
        rows = con.execute(
            """SELECT a.annotation_id, a.x, a.y, a.w, a.h, a.crop_path, i.path
               FROM annotations a JOIN images i USING (image_id) ORDER BY i.path"""
        ).fetchall()
    todo = [r for r in rows if r[5] is None or not (home / r[5]).exists()]
    done: list[int] = []
    cache: tuple[str, Image.Image] | None = None
    for aid, x, y, w, h, _, image_path in todo:
        try:
            if cache is None or cache[0] != image_path:
                cache = (image_path, open_image(home / image_path))
            save_atomic(cut_crop(cache[1], (x, y, w, h), crop), home / crop_relpath(aid))
            done.append(aid)
        except (BadImage, InvalidInput) as exc:
            if report is not None:
                report.skip(f"annotation {aid}", f"crop could not be re-cut: {exc}")
    if done:
        with catalog.write() as con:
            con.register("cut", pa.table({"annotation_id": done, "crop_path": [crop_relpath(a) for a in done]}))
            con.execute(
                "UPDATE annotations SET crop_path = cut.crop_path FROM cut "
                "WHERE annotations.annotation_id = cut.annotation_id"
            )
        log.info("re-cut %d crops left over by an earlier run", len(done))
    return len(done)


def add_support_examples(
    catalog: Catalog, home: Path, concept: str, examples: list[tuple[str, Image.Image]], crop: CropConfig = CropConfig()
) -> IngestReport:
    """Store the example images of a species added without retraining as ``support`` crops.

    Each (label, decoded image) is saved as a PNG under ``sources/added/<slug>/`` and
    ingested as one whole-frame crop of ``concept`` (source ``added``, split ``support``,
    one group per species). Returns the ingest report; the crops are then listed by
    :func:`index.catalog.embeddings.support_crops`.
    """
    folder = Home(Path(home)).added_examples(concept)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for _label, image in examples:
        path = folder / f"{len(list(folder.iterdir())):04d}.png"
        save_atomic(image, path)
        records.append(
            ImageRecord(
                ADDED,
                f"{folder.name}::{path.name}",
                path,
                boxes=(BoxRecord(concept, *FULL_FRAME, group_key=f"{ADDED}:{concept}", split=SUPPORT),),
            )
        )
    return ingest_records(catalog, home, ADDED, records, crop=crop)


def whole_frame_crop(image: Image.Image, crop: CropConfig = CropConfig()) -> Image.Image:
    """The crop :func:`add_support_examples` stores for one example ``image`` (a whole-frame box), cut in
    memory: the clip and cut of :func:`ingest_records` on the image as ingest reads its PNG back (RGB), so
    the example is embedded without reading the stored file again. Raises InvalidInput where ingest
    skips the box (an image under ``crop.min_side``)."""
    rgb = to_rgb(image)
    box = _whole_image(BoxRecord("", *FULL_FRAME), rgb.width, rgb.height)
    return cut_crop(rgb, clip_box(box, rgb.width, rgb.height, crop.min_side), crop)
