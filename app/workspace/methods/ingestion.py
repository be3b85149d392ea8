"""The Workspace's ingestion and splitting methods (:mod:`app.workspace.ingesting`, ``splitting``)."""

from __future__ import annotations

from pathlib import Path

from app.workspace import ingesting
from app.workspace.methods import Parts
from index.catalog.splits import SplitConfig, SplitSummary
from index.catalog.stats import Survey, survey
from index.records import IngestReport


class IngestionMethods(Parts):
    """Sources into the home, the survey of what it holds, and its split."""

    def ingest_synthetic(
        self, species: int = 16, holdout: int = 4, frames: int = 400, seed: int = 0, progress: bool = False
    ) -> IngestReport:
        """Draw the synthetic reef (cached under sources/) and ingest it."""
        return ingesting.ingest_synthetic(self.catalog, self.paths, self.crop, species, holdout, frames, seed, progress)

    def ingest_coco(
        self,
        annotations: Path,
        images: Path | None = None,
        split: str | None = None,
        progress: bool = False,
        source_name: str | None = None,
    ) -> IngestReport:
        """Ingest a COCO detection file (``split`` pins every crop; ``source_name``: default ``coco``)."""
        return ingesting.ingest_coco(
            self.catalog, self.paths, self.crop, annotations, images, split, progress, source_name
        )

    def ingest_yolo(self, data_yaml: Path, progress: bool = False, source_name: str | None = None) -> IngestReport:
        """Ingest a YOLO (Ultralytics / Roboflow) data set; splits pinned as its folders say."""
        return ingesting.ingest_yolo(self.catalog, self.paths, self.crop, data_yaml, progress, source_name)

    def ingest_folders(
        self,
        root: Path,
        group_pattern: str | None = None,
        split: str | None = None,
        progress: bool = False,
        source_name: str | None = None,
        lineages: Path | None = None,
    ) -> IngestReport:
        """Ingest class folders (one species each), with their lineages when given or found."""
        return ingesting.ingest_folders(
            self.catalog, self.paths, self.crop, root, group_pattern, split, progress, source_name, lineages
        )

    def ingest_fathomnet(
        self,
        concepts: list[str],
        max_per_concept: int | None = None,
        workers: int = 16,
        min_depth: float | None = None,
        max_depth: float | None = None,
        progress: bool = False,
    ) -> IngestReport:
        """Find, download (resuming) and ingest FathomNet frames with their boxes."""
        return ingesting.ingest_fathomnet(
            self.catalog, self.paths, self.crop, concepts, max_per_concept, workers, min_depth, max_depth, progress
        )

    # -- exploring and splitting -------------------------------------------------------
    def stats(self) -> Survey:
        """The survey of the catalog (crops per species, splits, sources, depths)."""
        return survey(self.catalog)

    def stats_plots(self, survey_: Survey, folder: Path) -> list[Path]:
        """Write the survey's PNG charts into ``folder``; returns the files written."""
        from app.report.plots import survey_plots

        return survey_plots(survey_, folder)

    def split(self, config: SplitConfig = SplitConfig(), force: bool = False) -> SplitSummary:
        """Assign train/val/test and hold species out (refused under trained models unless ``force``)."""
        from app.workspace.splitting import split_home

        return split_home(self.catalog, self.paths, config, force)
