"""The Workspace's methods, by concern: one class of plain one-line delegations each, which
:class:`app.workspace.Workspace` inherits (so every face still calls ``ws.identify_frames(...)``).

::

    ingestion         ingest_synthetic / coco / yolo / folders / fathomnet, stats, stats_plots, split
    species_and_taxa  species_add / remove, discovery, taxa_show / place / import
    annotations       annotation_store / forget / recall, embed_images (Label Studio's side)
    reports           evaluate, last_evaluation, status, crops, species_summary, embedding_map
    whole_frames      detect_train, detectors, detect, detect_evaluate, identify_frames, drawing, COCO, save

Each method calls one step function beside it (its docstring carries the detail). :class:`Parts` names
what the methods read of the Workspace (set by its constructor); the engines, models, index and
queries stay in ``app/workspace/__init__.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from app.workspace.catalog_reads import CatalogReads
    from app.workspace.engine_cache import Engines
    from app.workspace.frames.detector import DetectorCache
    from app.workspace.writer import HomeWriter
    from index.catalog.catalog import Catalog
    from index.home import Home
    from index.ingest.crops import CropConfig


class Parts:
    """What the methods read of the Workspace (its constructor sets them): its home, catalog, crop rule,
    caches and writer lock. They also call its core methods (engine, spaces, reload, index_build, ...)."""

    catalog: Catalog
    paths: Home
    home: Path
    crop: CropConfig
    device: str
    _engines: Engines
    _reads: CatalogReads
    _writer: HomeWriter
    _detectors: DetectorCache
