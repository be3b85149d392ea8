"""A home folder and the one place that composes ``index`` and ``embedder``.

The CLI and the explorer are thin views over these methods; neither holds logic
of its own. Heavy libraries (torch, faiss) are imported inside the methods that
need them, so ``oceanid stats`` starts fast.
"""

from __future__ import annotations

import logging
import os
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


class Workspace:
    """A home folder: ``catalog.duckdb``, ``images/``, ``crops/``, ``models/``,
    ``indexes/``, ``reports/`` and ``sources/`` (drawn or downloaded inputs)."""

    def __init__(self, home: Path | str | None = None, crop: CropConfig = CropConfig(),
                 busy_timeout: float = 10.0) -> None:
        self.home = resolve_home(home).expanduser().absolute()
        self.crop = crop
        self.catalog = Catalog(self.home / "catalog.duckdb", busy_timeout=busy_timeout)
        self._engines: dict = {}  # engine_key -> loaded Engine (one at a time)

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

    # -- models, vectors, index --------------------------------------------------------
    def current_model(self, model: str | None = None) -> str:
        """``model`` if given, else the last trained one. Raises EmptyIndex when none."""
        from index.errors import EmptyIndex

        chosen = model or self.catalog.get_meta("current_model")
        if not chosen:
            raise EmptyIndex("no model trained yet")
        return chosen

    def train(self, config, model: str | None = None, resume: bool = False, progress: bool = False):
        """Train an encoder on the train split; returns embedder's TrainResult."""
        from app.pipeline import train_model

        model_id = model or f"{config.backbone}-{config.loss}-d{config.dim}"
        if resume and not model:
            model_id = self.catalog.get_meta("current_model") or model_id
        return train_model(self.catalog, self.home, model_id, config, resume=resume, progress=progress)

    def embed(self, model: str | None = None, batch_size: int = 64, device: str = "auto", progress: bool = False):
        from app.pipeline import embed_crops

        return embed_crops(self.catalog, self.home, self.current_model(model), batch_size, device, progress)

    def index_build(self, model: str | None = None, kind: str = "auto", device: str = "cpu",
                    rebuild: bool = True) -> dict:
        """Build a new index generation from stored vectors (``rebuild=False``: only if stale)."""
        from app.pipeline import build_index

        self._engines.clear()
        return build_index(self.catalog, self.home, self.current_model(model), kind, device,
                           only_if_stale=not rebuild)

    def index_verify(self, model: str | None = None, generation: str | None = None) -> dict:
        from index.embeddings import model_record
        from index.generations import current_generation, model_dir, verify

        model_id = self.current_model(model)
        record = model_record(self.catalog, model_id)
        name = generation or current_generation(self.home, model_id)
        if name is None:
            from index.errors import EmptyIndex

            raise EmptyIndex(f"no index generation for model {model_id}", hint="run `oceanid index build`")
        manifest = verify(model_dir(self.home, model_id) / name, model_id, record["config_hash"], record["dim"])
        return {"generation": name, "ok": True, **manifest.to_dict()}

    # -- queries ------------------------------------------------------------------------
    def engine_key(self, model: str | None = None) -> tuple:
        """(model, live generation, prototypes version): changes whenever answers may change."""
        from index.generations import current_generation

        model_id = self.current_model(model)
        return (model_id, current_generation(self.home, model_id),
                self.catalog.get_meta(f"prototypes_version:{model_id}"))

    def engine(self, model: str | None = None):
        """The loaded query engine, cached until the live generation or prototypes change."""
        from app.engine import load_engine

        key = self.engine_key(model)
        if key not in self._engines:
            self._engines.clear()
            self._engines[key] = load_engine(self.catalog, self.home, key[0])
        return self._engines[key]

    def identify(self, images, k: int = 5, model: str | None = None, names=None):
        from app.queries import identify

        return identify(self.engine(model), list(images), names=names, k=k)

    def search(self, query, k: int = 10, where: str | None = None, model: str | None = None):
        from app.queries import search

        return search(self.engine(model), self.catalog, self.home, query, k=k, where=where)

    def species_add(self, name: str, images, genus: str | None = None, family: str | None = None,
                    model: str | None = None) -> dict:
        from app.species import add_species

        result = add_species(self.engine(model), self.catalog, self.home, name, list(images), genus, family,
                             self.crop)
        self._engines.clear()
        return result

    def species_remove(self, name: str, model: str | None = None) -> dict:
        from app.species import remove_species

        result = remove_species(self.engine(model), self.catalog, self.home, name)
        self._engines.clear()
        return result

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(self, report: Path | None = None, model: str | None = None, map_method: str = "pca",
                 seed: int = 0) -> dict:
        """Evaluate the live model and write the report folder (default reports/latest)."""
        from app.evaluation import evaluate
        from app.report import write_report

        summary, raw = evaluate(self.engine(model), self.catalog, seed=seed)
        folder = Path(report) if report else self.reports_dir / "latest"
        write_report(summary, raw, folder, map_method)
        summary["report_dir"] = str(folder.absolute())
        self.catalog.set_meta("last_report", str(folder.absolute()))
        return summary

    def last_evaluation(self) -> dict | None:
        """The JSON of the last `oceanid evaluate`, with ``report_dir``; None if never run."""
        import json

        folder = self.catalog.get_meta("last_report")
        if not folder or not (Path(folder) / "eval.json").is_file():
            return None
        data = json.loads((Path(folder) / "eval.json").read_text())
        data["report_dir"] = folder
        return data

    # -- browsing (the explorer) ------------------------------------------------------
    def status(self):
        """What the workspace holds and what to do next (app.browse.WorkspaceStatus)."""
        from app.browse import status

        return status(self)

    def crops(self, model: str | None = None, limit: int = 5000):
        from app.browse import crops

        return crops(self, model, limit)

    def species_summary(self, model: str | None = None):
        from app.browse import species_summary

        return species_summary(self, model)

    def embedding_map(self, method: str = "pca", max_points: int = 3000, model: str | None = None):
        from app.browse import embedding_map

        return embedding_map(self, method, max_points, model)
