"""The composer: a home folder and every step over it, the one thing the faces import.

::

    Workspace            a home (catalog, images, crops, models, indexes, reports)
      ingest_*            index.sources.* -> index.ingest.ingest            -> IngestReport
      stats / split       index.catalog.stats / index.catalog.splits (+ pipeline.split_guard) -> Survey / SplitSummary
      models              index.catalog.embeddings.list_models + the stale marks -> ModelInfo
      train / embed       pipeline: embedder.training / .encoding    -> TrainResult / EmbedReport
      fit_prototypes      pipeline: index.scoring.prototypes (writes only on change)
      index_build/verify  pipeline: index.vectors.vector_index + index.vectors.generations -> BuildResult / VerifyResult
      index_prune/rollback index.vectors.generations                          -> GenerationChange
      engine              engine.py: encoder + live index + prototypes + OOD scorers
      identify / search   identify.py (+ index.catalog.lookup)               -> Identification / CropHit
      species_add/remove  species.py (+ index.ingest.ingest, index.catalog.embeddings) -> SpeciesChange
      taxa_show/place/import taxa.py (+ index.catalog.taxa, index.taxonomy)  -> Lineage / TreePlace / TaxaImport
      annotation_*        annotation_tool.py: Label Studio annotations -> truth crops (+ species add) -> AnnotationChange
      evaluate            evaluation.py (+ cascade_evaluation.py) + app.report -> EvaluationSummary
      status / crops / species_summary / embedding_map   browse.py (the explorer's views)
    run_demo              demo.py: the whole pipeline on the synthetic reef -> DemoResult

Results are the dataclasses of :mod:`app.workspace.results` (``to_dict()`` is
what ``--json`` prints). Heavy libraries (torch, faiss, sklearn, matplotlib) are
imported inside the methods that need them, so ``oceanid stats`` starts fast.
"""

from __future__ import annotations

import threading

import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.workspace.results import (BuildResult, CascadeResult, DemoResult, DetectionFigures, EvaluationSummary,
                                   FrameIdentification, GenerationChange, Identification, IdentificationRecord,
                                   ModelInfo, SpeciesChange, TaxaImport, TreePlace, VerifyResult)
from embedder.ray_runner import RayConfig
from embedder.train_config import TrainConfig
from index.catalog.catalog import Catalog
from index.ingest.crops import CropConfig
from index.errors import EmptyIndex, InvalidInput
from index.home import Home, check_home, default_model_id, resolve_home
from index.ingest.ingest import check_source_name, ingest_records
from index.catalog.taxa import upsert as upsert_taxa
from index.records import IngestReport, SourcePlan
from index.catalog.splits import SplitConfig, SplitSummary, make_splits
from index.catalog.stats import Survey, source_ids, survey
from app.workspace.catalog_reads import CatalogReads
from app.workspace.threads import THREADS_ENV, limit_threads, usable_cores

if TYPE_CHECKING:
    from collections.abc import Sequence

    from app.workspace.browse import CropRef, MapPoint, SpeciesInfo, WorkspaceStatus
    from app.workspace.detection import DetectionRun, DetectorEvaluation, DetectorTraining
    from index.catalog.detectors import DetectorRecord
    from app.workspace.engine import Engine
    from app.workspace.identify import ImageInput
    from PIL import Image

    from app.workspace.pipeline import EmbedReport
    from embedder.training import TrainResult
    from index.catalog.lookup import CropHit
    from index.taxonomy import Lineage

__all__ = ["BuildResult", "CascadeResult", "DemoResult", "DetectionFigures", "FrameIdentification", "EvaluationSummary", "GenerationChange", "Identification", "IdentificationRecord",
           "RayConfig", "SpeciesChange", "SplitConfig", "TrainConfig", "VerifyResult", "Workspace", "demo_train_config",
           "check_home", "limit_threads", "THREADS_ENV", "usable_cores", "resolve_home", "run_demo"]

log = logging.getLogger(__name__)


class Workspace:
    """A home folder and the steps over it (see the module map above).

    ``home``: ``--home`` / ``$OCEANID_HOME`` / ``./data``. ``crop``: how boxes are cut.
    ``busy_timeout``: seconds to retry a catalog locked by another process.
    """

    def __init__(self, home: Path | str | None = None, crop: CropConfig = CropConfig(),
                 busy_timeout: float = 10.0, device: str = "cpu", gpu_search: bool = True) -> None:
        """``device`` (auto | cpu | cuda) is where queries run: the encoder, and with faiss-gpu
        and ``gpu_search`` a GPU copy of the index for unfiltered search (filtered search stays
        on the CPU index; the explorer passes ``gpu_search=False``)."""
        self.device, self.gpu_search = device, gpu_search
        self.paths = Home.at(home)
        self.home: Path = self.paths.root
        self.crop = crop
        self.catalog = Catalog(self.paths.catalog, busy_timeout=busy_timeout)
        self._engines: dict[tuple, Engine] = {}  # engine_key -> loaded Engine (one at a time)
        self._reads = CatalogReads(self.paths.catalog)  # prototypes version, taxa tree: until the catalog changes
        # Sessions of the explorer share one Workspace: writers (species add/remove) run one at
        # a time and publish a new generation built on a COPY of the live index; readers keep the
        # engine they hold (never changed in place) and load the new one on their next call.
        self._writer = threading.Lock()
        self._loading = threading.Lock()
        self._detectors: dict = {}  # (detector folder, weights time) -> loaded detector (one at a time)

    # -- ingestion ---------------------------------------------------------------
    def _ingest(self, source: str, plan: SourcePlan, progress: bool, source_name: str | None = None) -> IngestReport:
        """``source_name`` (``--source-name survey-2024``) replaces the reader's source name, so
        two surveys in one home can be told apart in ``--where source=...``."""
        records = plan.records
        if source_name is not None:
            source = check_source_name(source_name)
            records = [replace(r, source=source) for r in records]
        report = IngestReport(source)
        report.images_existing += len(plan.existing)
        for item, reason in plan.skipped:
            report.skip(item, reason)
        for item, text in plan.notes:
            report.note(item, text)
        self.catalog.ensure_schema()
        upsert_taxa(self.catalog, plan.taxa, plan.holdout_hints)
        return ingest_records(self.catalog, self.home, source, records, crop=self.crop,
                              report=report, total=len(plan.records), progress=progress)

    def ingest_synthetic(self, species: int = 16, holdout: int = 4, frames: int = 400, seed: int = 0,
                         progress: bool = False) -> IngestReport:
        """Draw the synthetic reef (cached under sources/) and ingest it."""
        from index.sources.coco import read_coco
        from index.sources.synthetic import generate_reef

        name = f"reef-s{species}-h{holdout}-f{frames}-seed{seed}"
        folder = self.paths.sources / name
        json_path = folder / "annotations.json"
        if not json_path.exists():
            tmp = folder.with_name(f".{name}.tmp")
            generate_reef(tmp, species=species, holdout=holdout, frames=frames, seed=seed)
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
        return self._ingest("synthetic", read_coco(json_path, folder, source="synthetic", id_prefix=name), progress)

    def ingest_coco(self, annotations: Path, images: Path | None = None, split: str | None = None,
                    progress: bool = False, source_name: str | None = None) -> IngestReport:
        """Ingest a COCO detection file (boxes become crops); ``split`` pins every crop;
        ``source_name`` names the source (default ``coco``)."""
        from index.sources.coco import read_coco

        if source_name is not None:
            check_source_name(source_name)  # before the file is read
        return self._ingest("coco", read_coco(annotations, images, split=split), progress, source_name)

    def ingest_yolo(self, data_yaml: Path, progress: bool = False, source_name: str | None = None) -> IngestReport:
        """Ingest a YOLO (Ultralytics / Roboflow) data set; splits pinned as its folders say;
        ``source_name`` names the source (default ``yolo``)."""
        from index.sources.yolo import read_yolo

        if source_name is not None:
            check_source_name(source_name)  # before the files are read
        return self._ingest("yolo", read_yolo(data_yaml), progress, source_name)

    def ingest_folders(self, root: Path, group_pattern: str | None = None, split: str | None = None,
                       progress: bool = False, source_name: str | None = None) -> IngestReport:
        """Ingest class folders (one per species, every file a crop); ``source_name`` names
        the source (default ``folders``)."""
        from index.sources.folders import read_folders

        if source_name is not None:
            check_source_name(source_name)
        return self._ingest("folders", read_folders(root, group_pattern=group_pattern, split=split), progress,
                            source_name)

    def ingest_fathomnet(self, concepts: list[str], max_per_concept: int | None = None, workers: int = 16,
                         min_depth: float | None = None, max_depth: float | None = None,
                         progress: bool = False) -> IngestReport:
        """Find, download (resuming) and ingest FathomNet frames with their boxes."""
        from index.sources.fathomnet import fetch_fathomnet

        self.catalog.ensure_schema()
        have = source_ids(self.catalog, "fathomnet")
        plan = fetch_fathomnet(concepts, self.paths.sources / "fathomnet", max_per_concept=max_per_concept,
                               workers=workers, min_depth=min_depth, max_depth=max_depth,
                               have=lambda uuid: uuid in have, progress=progress)
        return self._ingest("fathomnet", plan, progress)

    # -- exploring and splitting ------------------------------------------------------
    def stats(self) -> Survey:
        """The survey of the catalog (crops per species, splits, sources, depths)."""
        return survey(self.catalog)

    def stats_plots(self, survey_: Survey, folder: Path) -> list[Path]:
        """Write the survey's PNG charts into ``folder``; returns the files written."""
        from app.report.plots import survey_plots

        return survey_plots(survey_, folder)

    def split(self, config: SplitConfig = SplitConfig(), force: bool = False) -> SplitSummary:
        """Assign train/val/test (groups never cut) and hold species out.

        A split that moves crops under models trained on the current split is refused
        (InvalidInput naming them); with ``force`` it goes ahead and marks those models stale
        (``summary.stale_models``). Splitting again with the same settings moves nothing.
        """
        from app.workspace.pipeline import split_guard
        from index.catalog.splits import check_fractions

        check_fractions(config)  # a bad option is named before the catalog is read
        check, marked = split_guard(self.catalog, self.paths, force)
        summary = make_splits(self.catalog, config, before_write=check)
        summary.stale_models = list(marked)
        return summary

    # -- models, vectors, index --------------------------------------------------------
    def models(self) -> list[ModelInfo]:
        """Every model of the catalog, with its live generation and its stale mark."""
        from index.catalog.embeddings import list_models
        from index.vectors.generations import current_generation

        current = self.catalog.current_model()
        return [ModelInfo(m["model_id"], m["backbone"], m["dim"], m["vectors"], m["model_id"] == current,
                          current_generation(self.home, m["model_id"]), self.catalog.model_stale(m["model_id"]))
                for m in list_models(self.catalog)]

    def current_model(self, model: str | None = None) -> str:
        """``model`` if given, else the last trained one. Raises EmptyIndex when none."""
        chosen = model or self.catalog.current_model()
        if not chosen:
            raise EmptyIndex("no model trained yet")
        return chosen

    def train(self, config: TrainConfig, model: str | None = None, resume: bool = False,
              progress: bool = False) -> TrainResult:
        """Train an encoder on the train split (model id default: ``<backbone>-<loss>-d<dim>``)."""
        from app.workspace.pipeline import train_model

        model_id = model or default_model_id(config.backbone, config.loss, config.dim)
        if resume and not model:
            model_id = self.catalog.current_model() or model_id
        return train_model(self.catalog, self.paths, model_id, config, resume=resume, progress=progress)

    def embed(self, model: str | None = None, batch_size: int = 64, device: str = "auto",
              progress: bool = False, engine: str = "local", ray: RayConfig | None = None) -> EmbedReport:
        """Embed every crop that has no vector for the model yet.

        ``engine="ray"`` embeds on a Ray cluster (``ray``: where and how wide; its
        ``batch_size`` is taken from ``batch_size``); ``local`` in this process.
        """
        if engine == "ray":
            from app.workspace.ray_embed import embed_crops_ray

            config = replace(ray or RayConfig(), batch_size=batch_size)
            return embed_crops_ray(self.catalog, self.paths, self.current_model(model), config)[0]
        if engine != "local":
            raise InvalidInput(f"unknown engine {engine!r}; valid: local, ray")
        from app.workspace.pipeline import embed_crops

        return embed_crops(self.catalog, self.paths, self.current_model(model), batch_size, device, progress)

    def fit_prototypes(self, model: str | None = None, n_centres: int = 1) -> bool:
        """Fit the trained species' prototypes from the train split; write them only when
        they changed. Returns whether they were written."""
        from app.workspace.pipeline import fit_prototypes

        _, written = fit_prototypes(self.catalog, self.current_model(model), n_centres, home=self.paths)
        if written:
            self._engines.clear()
        return written

    def index_build(self, model: str | None = None, kind: str = "auto", device: str = "cpu",
                    rebuild: bool = True, n_centres: int = 1, shards: int = 1) -> BuildResult:
        """Fit the prototypes, then build a new index generation from the stored vectors
        (``shards`` >= 2: that many indexes by id hash, searched in parallel).

        ``rebuild=False`` (``oceanid index build``): nothing is written when the live
        generation already holds exactly the stored vectors and the prototypes are current.
        """
        from app.workspace.pipeline import build_index

        model_id = self.current_model(model)
        refit = self.fit_prototypes(model_id, n_centres)
        result = build_index(self.catalog, self.paths, model_id, kind, device, rebuild=rebuild, shards=shards)
        if result.built:
            self._engines.clear()
        return replace(result, prototypes_refit=refit)

    def index_verify(self, model: str | None = None, generation: str | None = None) -> VerifyResult:
        """Check a generation (default: the live one) against its manifest and the model."""
        from index.catalog.embeddings import model_record
        from index.vectors.generations import current_generation, model_dir, verify

        model_id = self.current_model(model)
        record = model_record(self.catalog, model_id)
        name = generation or current_generation(self.home, model_id)
        if name is None:
            raise EmptyIndex(f"no index generation for model {model_id}", hint="run `oceanid index build`")
        manifest = verify(model_dir(self.home, model_id) / name, model_id, record["config_hash"], record["dim"])
        return VerifyResult(name, True, manifest)

    def index_prune(self, model: str | None = None, keep: int | None = None) -> GenerationChange:
        """Delete all but the newest ``keep`` generations (default 3; never the live one)."""
        from index.vectors.generations import DEFAULT_KEEP, current_generation, prune

        model_id = self.current_model(model)
        removed = prune(self.home, model_id, DEFAULT_KEEP if keep is None else keep)
        return GenerationChange(model_id, current_generation(self.home, model_id), tuple(removed))

    def index_rollback(self, model: str | None = None) -> GenerationChange:
        """Make the generation before the live one live again, verified like any load."""
        from index.catalog.embeddings import model_record
        from index.vectors.generations import rollback

        from index.catalog.embeddings import content_digest, load_embeddings
        from index.vectors.generations import current_manifest

        model_id = self.current_model(model)
        record = model_record(self.catalog, model_id)
        current = rollback(self.home, model_id, record["config_hash"], record["dim"])
        self._engines.clear()
        _, manifest = current_manifest(self.home, model_id, record["config_hash"], record["dim"])
        ids, vectors = load_embeddings(self.catalog, model_id)
        warning = None
        if manifest.content != content_digest(ids, vectors):
            warning = (f"{current} holds {manifest.count} vectors, not the {len(ids)} stored now (an older state): "
                       "searches answer from it until `oceanid index build`")
        return GenerationChange(model_id, current, warning=warning)

    # -- queries ------------------------------------------------------------------------
    def engine_key(self, model: str | None = None) -> tuple[str, str | None, int]:
        """(model, live generation, prototypes version): changes whenever answers may change."""
        from index.vectors.generations import current_generation

        model_id = self.current_model(model or self._reads.get("current_model", self.catalog.current_model))
        version = self._reads.get(("prototypes_version", model_id), lambda: self.catalog.prototypes_version(model_id))
        return (model_id, current_generation(self.home, model_id), version)

    def engine(self, model: str | None = None) -> Engine:
        """The loaded query engine, cached until the live generation or prototypes change."""
        from app.workspace.engine import load_engine

        key = self.engine_key(model)
        engine = self._engines.get(key)
        if engine is None:
            stale = next((e for e in self._engines.values() if e.model_id == key[0]), None)
            # While one thread loads the new engine, the others answer from the whole old one of
            # the same model (an HTTP server under load must not stall on every reload).
            if not self._loading.acquire(blocking=stale is None):
                return stale
            try:
                engine = self._engines.get(key)
                if engine is None:
                    engine = load_engine(self.catalog, self.paths, key[0], device=self.device,
                                         gpu_search=self.gpu_search)
                    self._engines = {key: engine}  # swapped whole: a reader never sees it half-built
            finally:
                self._loading.release()
        return engine

    def identify(self, images: Sequence[ImageInput], k: int = 5, model: str | None = None,
                 names: Sequence[str] | None = None, progress: bool = False,
                 decode: str = "probable", vectors: Any = None) -> list[Identification]:
        """Name the species in each image (or ``unknown``), and the deepest confident taxon
        (``decode``: probable | distance); unreadable images get ``error``. ``vectors``: the
        images' embeddings from :meth:`embed_query`, when they are searched with too."""
        from app.workspace.identify import identify
        from index.catalog.taxa import tree

        return identify(self.engine(model), list(images), names=names, k=k, progress=progress,
                        tree=self._reads.get("tree", lambda: tree(self.catalog)), decode_method=decode,
                        vectors=vectors)

    def embed_query(self, image: ImageInput, model: str | None = None) -> Any:
        """One image's (1, d) embedding, for :meth:`identify` (``vectors=``) and :meth:`search`
        both: the image is decoded and embedded once. Raises BadImage."""
        from app.workspace.identify import embed_query

        return embed_query(self.engine(model), image)

    # -- whole frames (the cascade) -----------------------------------------------------
    def detector_path(self, detector: Path | None = None) -> Path:
        """``detector`` if given, else the catalog's current detector (``detect train`` makes it
        current), else the newest detector folder under models/. Raises NotFound."""
        from app.workspace.cascade import box_source

        return box_source(self._default_detector(detector), self.paths.models).path

    def _default_detector(self, detector: Path | None) -> Path | None:
        """``detector``, or the folder of the catalog's current detector when there is one."""
        if detector is None:
            current = self.current_detector()
            if current is not None and (self.paths.models / current).is_dir():
                return self.paths.models / current
        return detector

    def identify_frames(self, frames: Sequence[ImageInput] = (), *, detector: Path | None = None,
                        boxes: Path | None = None, min_score: float | None = None, k: int = 5,
                        model: str | None = None, names: Sequence[str] | None = None, progress: bool = False,
                        decode: str = "probable") -> CascadeResult:
        """Find every organism in each whole frame and identify it (:mod:`app.workspace.cascade`).

        Boxes come from ``boxes`` (a COCO results file; with no ``frames``, the frames are the
        files it names) or else from the detector folder ``detector`` (default: the newest under
        models/). ``min_score`` drops weaker boxes (default: 0.3 for the detector, none of a file's;
        boxes without a score are kept).
        """
        from app.workspace.cascade import (DEFAULT_MIN_SCORE, box_source, detections_frames, detector_finder,
                                           file_finder, identify_frames)
        from index.catalog.taxa import tree

        threshold = (DEFAULT_MIN_SCORE if boxes is None else 0.0) if min_score is None else float(min_score)
        if not 0.0 <= threshold <= 1.0:
            raise InvalidInput(f"--min-score must be within 0..1, got {threshold:g}")
        engine = self.engine(model)  # first: no index is a one-line error before a detector loads
        skipped: list[tuple[str, str]] = []
        if boxes is not None:
            source = box_source(Path(boxes), self.paths.models)
            if source.kind != "detections":
                raise InvalidInput(f"--boxes {boxes} is a folder; give a COCO results .json file")
            given = [Path(f) for f in frames] if frames else None
            files, matched, skipped = detections_frames(source.path, given)
            if given is None:
                frames, names = files, [str(Path(f).relative_to(source.path.absolute().parent))
                                        if Path(f).is_relative_to(source.path.absolute().parent) else Path(f).name
                                        for f in files]
            find = file_finder(matched, threshold)
        else:
            source = box_source(self._default_detector(detector), self.paths.models)
            if source.kind != "detector":
                raise InvalidInput(f"--detector {detector} is a file; give a detector folder (or use --boxes)")
            find = detector_finder(source.path, threshold, self.device, self._detectors)
        boxes_from = f"{source.kind} {source.path}"
        results = identify_frames(engine, list(frames), find, self.crop, names=names, k=k, tree=tree(self.catalog),
                                  decode_method=decode, boxes_from=boxes_from, progress=progress)
        return CascadeResult(tuple(results), boxes_from, tuple(skipped))

    def draw_frames(self, result: CascadeResult, folder: Path) -> list[Path]:
        """Write each frame with its organisms' boxes and labels drawn as ``folder/<frame>.png``."""
        from app.workspace.annotate import draw_frames

        return draw_frames(result.frames, folder)

    def annotate_frame(self, image: Image.Image, frame: FrameIdentification) -> Image.Image:
        """``image`` with ``frame``'s boxes and labels drawn on it (the explorer shows this)."""
        from app.workspace.annotate import annotate

        return annotate(image, frame)

    def cut_box(self, image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
        """The crop of ``box`` in ``image``, cut as every training crop is (``index.ingest.crops``)."""
        from index.ingest.crops import cut_crop

        return cut_crop(image, box, self.crop)

    def write_coco(self, result: CascadeResult, path: Path, model: str | None = None) -> Path:
        """Write the identified boxes as a COCO document (category = the species named, or
        ``unknown``); pycocotools reads it with ``COCO(path)``, its ``annotations`` with ``loadRes``."""
        import json

        from index.sources.detections import coco_results
        from index.files import write_text_atomic

        engine = self.engine(model)
        categories = [*engine.prototypes.names, "unknown"]
        extra = sorted({o.species for o in result.organisms} - set(categories) - {None})
        doc = coco_results([(f.name, f.width, f.height, [(o.box, o.detection_score if o.detection_score is not None
                                                          else 1.0, o.species) for o in f.organisms])
                            for f in result.frames if not f.error], [*categories, *extra],
                           f"oceanid identify: boxes from {result.boxes_from}, model {engine.model_id}")
        write_text_atomic(Path(path), json.dumps(doc, indent=1))
        return Path(path)

    def save_predicted(self, result: CascadeResult, model: str | None = None) -> IngestReport:
        """Add every organism found in a frame file to the catalog as a *predicted* crop
        (``origin = predicted``, concept = the species named or ``unknown``, never given a
        split), then embed it and rebuild the index so it can be searched (``--where
        origin=predicted``) and reviewed. Frames given as bytes have no file and are left out."""
        from app.workspace.cascade import predicted_records

        records = predicted_records(result)
        self.catalog.ensure_schema()
        with self._writer:
            try:
                report = ingest_records(self.catalog, self.home, "predicted", records, crop=self.crop)
                if report.crops_added:
                    self.embed(model, progress=False)
                    self.index_build(model, rebuild=False)
            finally:
                self._engines = {}
        return report

    def taxa_show(self, name: str) -> Lineage:
        """The lineage of one taxon of the catalog. Raises NotFound."""
        from index.catalog.taxa import lineage

        return lineage(self.catalog, name)

    def taxa_place(self, name: str, top: int = 5) -> TreePlace:
        """A taxon's lineage and its ``top`` nearest relatives by taxonomic distance among the
        concepts with crops. Raises NotFound."""
        from app.workspace.taxa import place_in_tree

        return place_in_tree(self.catalog, name, top)

    def taxa_import(self, path: Path) -> TaxaImport:
        """Fill or correct the lineages of ingested concepts from a lineage CSV (its names win)."""
        from app.workspace.taxa import import_lineages

        with self._writer:
            try:
                return import_lineages(self.catalog, Path(path))
            finally:
                self._engines = {}

    def crop_files(self, crop_ids: Sequence[int]) -> list[Path]:
        """The cached crop file of each catalog crop id (to identify a crop by id). Raises NotFound."""
        from index.catalog.lookup import crop_files

        return crop_files(self.catalog, self.home, crop_ids)

    def search(self, query: ImageInput | int | Any, k: int = 10, where: str | None = None,
               model: str | None = None) -> list[CropHit]:
        """The k crops nearest an image, its :meth:`embed_query` embedding or a catalog crop id,
        inside an optional filter."""
        from app.workspace.identify import search
        from index.catalog.lookup import allowed_ids

        allowed = None
        if where and where.strip():  # a filter's ids are read again only when the catalog changed
            allowed = self._reads.get(("allowed", where), lambda: allowed_ids(self.catalog, where))
        return search(self.engine(model), self.catalog, self.home, query, k=k, where=where, allowed=allowed)

    def species_add(self, name: str, images: Sequence[ImageInput], genus: str | None = None,
                    family: str | None = None, model: str | None = None, correct: bool = False) -> SpeciesChange:
        """Add a species from a few examples, without retraining; all or nothing. ``genus`` /
        ``family`` fill what the catalog lacks and change what it knows only with ``correct``."""
        from app.workspace.species import add_species

        with self._writer:
            try:
                change = add_species(self.engine(model), self.catalog, self.paths, name, list(images), genus,
                                     family, self.crop, correct=correct)
            finally:
                self._engines = {}
        self._store_scorers(model)
        return change

    def species_remove(self, name: str, model: str | None = None) -> SpeciesChange:
        """Remove a species added with :meth:`species_add`."""
        from app.workspace.species import remove_species

        with self._writer:
            try:
                change = remove_species(self.engine(model), self.catalog, self.paths, name)
            finally:
                self._engines = {}
        self._store_scorers(model)
        return change

    def _store_scorers(self, model: str | None) -> None:
        """After a species change: load the new engine, which fits and stores the added species'
        scorer once (``app.workspace.decisions.added_scorer``), so later loads only read it."""
        from index.errors import OceanidError

        try:
            self.engine(model)
        except OceanidError as exc:  # the change is made; the next load fits what is missing
            log.warning("scorers for the changed species not stored now: %s", exc)

    # -- annotation tools (app.workspace.annotation_tool: Label Studio's accepted annotations) --
    def annotation_store(self, note: Any, min_examples: int | None = None, model: str | None = None) -> Any:
        """Keep a ToolAnnotation as truth crops, searchable at once -> AnnotationChange."""
        from app.workspace import annotation_tool as tool

        return tool.store_annotation(self, note, min_examples or tool.MIN_EXAMPLES, model)

    def annotation_forget(self, project: int, annotation: int, min_examples: int | None = None,
                          model: str | None = None) -> Any:
        """Undo :meth:`annotation_store` for one annotation -> AnnotationChange."""
        from app.workspace import annotation_tool as tool

        return tool.forget_annotation(self, project, annotation, min_examples or tool.MIN_EXAMPLES, model)

    def embed_images(self, images: Sequence[Any], model: str | None = None) -> Any:
        """Decoded images -> their (n, d) embeddings, batched (for identify ``vectors=`` and recall)."""
        from app.workspace.annotation_tool import embed_images

        return embed_images(self, images, model)

    def annotation_recall(self, items: Any, model: str | None = None) -> list[tuple[str, float] | None]:
        """Per image (or vector), the label a person gave a near-duplicate of it, else None."""
        from app.workspace.annotation_tool import recall

        return recall(self, items, model)

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(self, report: Path | None = None, model: str | None = None, map_method: str = "pca",
                 seed: int = 0, progress: bool = False) -> EvaluationSummary:
        """Evaluate the live model and write the report folder (default reports/latest); when the
        catalog lists a detector, also grade whole frames through the cascade (``detection``)."""
        from app.report.report import write_report
        from app.workspace.evaluation import evaluate
        from app.workspace.pipeline import check_no_leak

        engine = self.engine(model)
        check_no_leak(self.catalog, self.paths, engine.model_id)  # a re-split home must not grade on seen crops
        summary, raw = evaluate(engine, self.catalog, seed=seed)
        summary.model_stale = self.catalog.model_stale(engine.model_id)
        summary.detection = self._evaluate_frames(engine, progress)
        folder = (Path(report) if report else self.paths.reports / "latest").absolute()
        write_report(summary, raw, folder, map_method)
        summary.report_dir = str(folder)
        self.catalog.set_last_report(str(folder))
        return summary

    def _evaluate_frames(self, engine: Engine, progress: bool = False) -> DetectionFigures | None:
        """The cascade, with the detector ``identify --frames`` uses by default, on the held-out
        frames (:mod:`app.workspace.cascade_evaluation`); None when the catalog lists no detector,
        its folder is gone or no frame is held out (a warning says which)."""
        from app.workspace.cascade import DEFAULT_MIN_SCORE, detector_finder
        from app.workspace.cascade_evaluation import cascade_figures, held_out_frames
        from index.errors import NotFound
        from index.catalog.frames import truth_frames
        from index.catalog.taxa import tree

        if not self.detectors():
            return None
        try:
            folder = self.detector_path()
        except NotFound as exc:
            log.warning("evaluate: no whole-frame figures: %s", exc)
            return None
        split, frames = held_out_frames(truth_frames(self.catalog, self.home))
        if not frames:
            log.warning("evaluate: no whole-frame figures: no test or val frame has a box")
            return None
        find = detector_finder(folder, 0.0, self.device, self._detectors)  # every box it keeps: mAP needs them
        names = [str(f.path.relative_to(self.home)) if f.path.is_relative_to(self.home) else str(f.path)
                 for f in frames]
        figures = cascade_figures(engine, frames, find, self.crop, DEFAULT_MIN_SCORE, tree(self.catalog), names,
                                  progress=progress)
        return DetectionFigures(folder.name, split, figures)

    def last_evaluation(self) -> EvaluationSummary | None:
        """The summary of the last `oceanid evaluate`, with ``report_dir``; None if never run."""
        import json

        folder = self.catalog.last_report()
        if not folder or not (Path(folder) / "eval.json").is_file():
            return None
        summary = EvaluationSummary.from_dict(json.loads((Path(folder) / "eval.json").read_text()))
        summary.report_dir = folder
        return summary

    # -- browsing (the explorer) ------------------------------------------------------
    def status(self) -> WorkspaceStatus:
        """What the workspace holds and what to do next."""
        from app.workspace.browse import status

        return status(self.catalog, self.paths)

    def crops(self, model: str | None = None, limit: int = 5000) -> list[CropRef]:
        """Crops with a vector for the model, for pickers."""
        from app.workspace.browse import crops

        return crops(self.catalog, self.engine(model), self.paths, limit)

    def species_summary(self, model: str | None = None) -> list[SpeciesInfo]:
        """Every species with its status, examples, nearest crops and confusable species."""
        from app.workspace.browse import species_summary

        return species_summary(self.catalog, self.engine(model), self.paths)

    def embedding_map(self, method: str = "pca", max_points: int = 3000,
                      model: str | None = None) -> list[MapPoint]:
        """The embedded crops in 2-D (PCA or UMAP)."""
        from app.workspace.browse import embedding_map

        return embedding_map(self.catalog, self.engine(model), self.paths, method, max_points)

    # -- the class-agnostic detector (app.workspace.detection) --------------------
    def detect_train(self, arch: str = "fcos", image_size: int = 384, epochs: int = 8, device: str = "cpu",
                     detector: str | None = None, resume: bool = False, max_epochs_now: int | None = None,
                     progress: bool = False, **options: Any) -> DetectorTraining:
        """Train a detector on the catalog's frames with boxes (``models/<detector-id>/``, listed in
        the catalog and made current). ``options``: batch_size, lr, fpn_channels, pretrained."""
        from app.workspace.detection import train_detector

        return train_detector(self.catalog, self.paths, arch=arch, image_size=image_size, epochs=epochs,
                              device=device, detector_id=detector, resume=resume, max_epochs_now=max_epochs_now,
                              progress=progress, **options)

    def detectors(self) -> list[DetectorRecord]:
        """The catalog's detectors, oldest first."""
        from app.workspace.detection import detectors

        return detectors(self.catalog)

    def current_detector(self) -> str | None:
        """The detector id ``detect`` uses when none is named (the last trained)."""
        return self.catalog.current_detector() if self.catalog.exists() else None

    def load_detector(self, detector: str | None = None):
        """(detector id, folder, model, config) of ``detector`` or the current one, cached while
        its weights are unchanged. Raises NotFound when the home has none."""
        from app.workspace.detection import DetectorCache

        if not hasattr(self, "_detector_cache"):
            self._detector_cache = DetectorCache()
        return self._detector_cache.get(self.catalog, self.paths, detector)

    def detect(self, frames: Sequence[Path], names: Sequence[str] | None = None, min_score: float | None = None,
               detector: str | None = None) -> DetectionRun:
        """Boxes with scores in each whole frame; unusable frames get a one-line ``error``."""
        from app.workspace.detection import DEFAULT_MIN_SCORE, detect_frames

        return detect_frames(self.load_detector(detector), frames, names,
                             DEFAULT_MIN_SCORE if min_score is None else min_score, self.device)

    def detections_coco(self, run: DetectionRun, path: Path | None = None) -> dict:
        """A detect run as a COCO document (images, categories, annotations = COCO results),
        written atomically to ``path`` when given."""
        import json

        from app.workspace.detection import coco_document
        from index.files import write_text_atomic

        doc = coco_document(run)
        if path is not None:
            write_text_atomic(Path(path), json.dumps(doc, indent=1))
        return doc

    def detect_evaluate(self, split: str | None = None, detector: str | None = None) -> DetectorEvaluation:
        """pycocotools mAP@0.5, mAP@0.5:0.95, recall@0.5 on held-out frames (test, else val)."""
        from app.workspace.detection import evaluate_detector

        return evaluate_detector(self.catalog, self.paths, self.load_detector(detector), split, self.device)


def __getattr__(name: str) -> Any:
    """``run_demo`` and ``demo_train_config`` load on first use (the demo pulls in the pipeline)."""
    if name in ("run_demo", "demo_train_config"):
        from app.workspace import demo

        return getattr(demo, name)
    if name in ("ToolAnnotation", "ToolBox", "AnnotationChange"):  # what an annotation tool sends, and changes
        from app.workspace import annotation_tool as tool

        return getattr(tool, name)
    if name == "organism_label":  # "species 0.93" / "unknown (closest X 0.41)": how a box is labelled
        from app.workspace.annotate import label

        return label
    if name in ("CropHit", "SpeciesInfo", "WorkspaceStatus"):  # result types, for the API's schemas
        from app.workspace import browse
        from index.catalog import lookup as search

        return getattr(search if name == "CropHit" else browse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
