"""A home folder and the one place that composes ``index`` and ``embedder``.

The CLI and the explorer are thin views over these methods; neither holds logic
of its own. Heavy libraries (torch, faiss) are imported inside the methods that
need them, so ``oceanid stats`` starts fast.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from index.catalog import Catalog
from index.crops import CropConfig
from index.ingest import ingest_records, upsert_taxa
from index.records import IngestReport
from index.splits import SplitConfig, SplitSummary, make_splits
from index.stats import Survey, survey

log = logging.getLogger(__name__)

DEFAULT_HOME = Path("data")


def resolve_home(home: Path | str | None = None) -> Path:
    """``--home`` if given, else ``$OCEANID_HOME``, else ``./data``."""
    if home:
        return Path(home)
    env = os.environ.get("OCEANID_HOME")
    return Path(env) if env else DEFAULT_HOME


@dataclass
class Workspace:
    """A home folder: ``catalog.duckdb``, ``images/``, ``crops/``, ``models/``,
    ``indexes/``, ``reports/`` and ``sources/`` (drawn or downloaded inputs)."""

    home: Path
    crop: CropConfig = CropConfig()

    def __init__(self, home: Path | str | None = None, crop: CropConfig = CropConfig(),
                 busy_timeout: float = 10.0) -> None:
        self.home = resolve_home(home).expanduser().absolute()
        self.crop = crop
        self.catalog = Catalog(self.home / "catalog.duckdb", busy_timeout=busy_timeout)

    # -- folders ---------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def indexes_dir(self) -> Path:
        return self.home / "indexes"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def sources_dir(self) -> Path:
        return self.home / "sources"

    # -- ingestion ---------------------------------------------------------------
    def _ingest(self, source: str, plan, progress: bool, hints: dict[str, str] | None = None) -> IngestReport:
        report = IngestReport(source)
        for item, reason in plan.skipped:
            report.skip(item, reason)
        self.catalog.ensure_schema()
        upsert_taxa(self.catalog, plan.taxa, hints)
        return ingest_records(self.catalog, self.home, source, plan.records, crop=self.crop,
                              report=report, total=len(plan.records), progress=progress)

    def ingest_synthetic(self, species: int = 16, holdout: int = 4, frames: int = 400, seed: int = 0,
                         progress: bool = False) -> IngestReport:
        """Draw the synthetic reef (cached under sources/) and ingest it."""
        from index.sources.coco import read_coco
        from index.sources.synthetic import generate_reef

        name = f"reef-s{species}-h{holdout}-f{frames}-seed{seed}"
        folder = self.sources_dir / name
        json_path = folder / "annotations.json"
        if not json_path.exists():
            tmp = folder.with_name(f".{name}.tmp")
            generate_reef(tmp, species=species, holdout=holdout, frames=frames, seed=seed)
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            tmp.rename(folder)
        plan = read_coco(json_path, folder, source="synthetic", id_prefix=name)
        return self._ingest("synthetic", plan, progress, plan.holdout_hints)

    def ingest_coco(self, annotations: Path, images: Path | None = None, split: str | None = None,
                    progress: bool = False) -> IngestReport:
        from index.sources.coco import read_coco

        plan = read_coco(annotations, images, split=split)
        return self._ingest("coco", plan, progress, plan.holdout_hints)

    def ingest_folders(self, root: Path, group_pattern: str | None = None, split: str | None = None,
                       progress: bool = False) -> IngestReport:
        from index.sources.folders import read_folders

        plan = read_folders(root, group_pattern=group_pattern, split=split)
        return self._ingest("folders", plan, progress)

    def ingest_fathomnet(self, concepts: list[str], max_per_concept: int | None = None, workers: int = 16,
                         min_depth: float | None = None, max_depth: float | None = None,
                         progress: bool = False) -> IngestReport:
        """Find, download (resuming) and ingest FathomNet frames with their boxes."""
        from index.sources.fathomnet import fetch_fathomnet

        self.catalog.ensure_schema()
        with self.catalog.read() as con:
            have = {r[0] for r in con.execute(
                "SELECT source_id FROM images WHERE source = 'fathomnet'").fetchall()}
        result = fetch_fathomnet(
            concepts, self.sources_dir / "fathomnet", max_per_concept=max_per_concept, workers=workers,
            min_depth=min_depth, max_depth=max_depth, have=lambda uuid: uuid in have, progress=progress,
        )
        report = IngestReport("fathomnet")
        report.images_existing += len(result.existing)
        for item, reason in result.failures:
            report.skip(item, reason)
        upsert_taxa(self.catalog, result.taxa)
        return ingest_records(self.catalog, self.home, "fathomnet", result.images, crop=self.crop,
                              report=report, total=len(result.images), progress=progress)

    # -- exploring and splitting ------------------------------------------------------
    def stats(self) -> Survey:
        return survey(self.catalog)

    def split(self, config: SplitConfig = SplitConfig()) -> SplitSummary:
        return make_splits(self.catalog, config)
