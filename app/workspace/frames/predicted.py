"""The organisms a cascade found, saved to the catalog as *predicted* crops (``identify --frames
--save``): embedded and indexed, so they can be searched (``--where origin=predicted``) and reviewed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from index.ingest.crops import CropConfig

if TYPE_CHECKING:
    from app.workspace.frame_metadata import SaveMetadata
    from app.workspace.frames.cascade import CascadeResult
    from index.catalog.catalog import Catalog
    from index.records import IngestReport


def predicted_records(result: CascadeResult, metadata: SaveMetadata | None = None) -> list:
    """The frames of a :class:`CascadeResult` with organisms, as ``predicted`` ImageRecords (one
    BoxRecord per organism, origin ``predicted``), each with its depth, date, position and source
    from ``metadata`` (:class:`app.workspace.frame_metadata.SaveMetadata`; source ``predicted``
    when none is given)."""
    from app.workspace.frame_metadata import DEFAULT_SOURCE, SaveMetadata
    from index.records import PREDICTED, BoxRecord, ImageRecord

    metadata = metadata or SaveMetadata()
    records = []
    for frame in result.frames:
        if frame.error or not frame.source or not frame.organisms:
            continue
        boxes = tuple(
            BoxRecord(
                o.species or "unknown",
                *o.box,
                group_key=f"predicted:{frame.source}",
                origin=PREDICTED,
                detection_score=o.detection_score,
            )
            for o in frame.organisms
        )
        meta = metadata.of(frame.name, frame.source)
        records.append(
            ImageRecord(
                meta.source or DEFAULT_SOURCE,
                frame.source,
                Path(frame.source),
                boxes,
                depth_m=meta.depth_m,
                latitude=meta.latitude,
                longitude=meta.longitude,
                timestamp=meta.timestamp,
            )
        )
    return records


def save_predicted(
    catalog: Catalog,
    home: Path,
    crop: CropConfig,
    result: CascadeResult,
    metadata: SaveMetadata | None,
    *,
    writer: AbstractContextManager,
    make_searchable: Callable[[], object],
    refresh: Callable[[], None],
) -> IngestReport:
    """Add every organism found in a frame file to the catalog as a *predicted* crop
    (``origin = predicted``, concept = the species named or ``unknown``, never given a split),
    then, when crops were added, ``make_searchable`` (embed them and build the index) so they can
    be searched (``--where origin=predicted``) and reviewed. Frames given as bytes have no file
    and are left out. ``metadata`` (:meth:`Workspace.save_metadata`): each frame's depth, date,
    position and source. All of it holds ``writer`` (the home's writer lock); ``refresh`` (forget
    the loaded engines) runs at the end, also on failure."""
    from index.ingest.ingest import ingest_records
    from index.records import IngestReport

    records = predicted_records(result, metadata)
    catalog.ensure_schema()
    with writer:
        try:
            report = IngestReport("predicted")
            for source in dict.fromkeys(r.source for r in records):  # one ingest per source named
                ingest_records(
                    catalog, home, source, [r for r in records if r.source == source], crop=crop, report=report
                )
            if report.crops_added:
                make_searchable()
        finally:
            refresh()
    return report
