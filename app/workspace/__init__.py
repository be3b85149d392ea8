"""The composer: a home folder and every step over it, the one thing the faces import.

``Workspace`` holds the home (catalog, images, crops, models, indexes, reports), its caches (engines,
spaces, detector, catalog reads) and the writer lock; each method delegates to one step function of a
module beside it (the table in docs/ARCHITECTURE.md says which). Results are frozen dataclasses that
live with the step that makes them (``to_dict()`` is what ``--json`` prints); this module re-exports
them, the light ones at once and the rest on first use (:data:`LAZY`), so ``import app.workspace``
loads no faiss, torch, scikit-learn or matplotlib.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.workspace import ingesting
from app.workspace.batching import MAX_BATCH, WINDOW_S, Batcher, Overloaded, embed_items
from app.workspace.catalog_reads import CatalogReads
from app.workspace.engine_cache import EngineCache, SpacesCache
from app.workspace.frames.detector import DetectorCache
from app.workspace.identification import Identification, IdentificationRecord
from app.workspace.index_results import BuildResult, GenerationChange, ModelInfo, VerifyResult
from app.workspace.results import DetectionFigures, EvaluationSummary
from app.workspace.threads import THREADS_ENV, limit_threads, threads_for, usable_cores
from app.workspace.writer import HomeWriter
from embedder.ray_runner import RayConfig
from embedder.train_config import TrainConfig
from index.catalog.catalog import Catalog
from index.catalog.splits import SplitConfig, SplitSummary
from index.catalog.stats import Survey, survey
from index.errors import EmptyIndex
from index.home import Home, check_home, default_model_id, resolve_home
from index.ingest.crops import CropConfig
from index.records import IngestReport

if TYPE_CHECKING:
    from collections.abc import Sequence

    from PIL import Image

    from app.workspace.browse import CropRef, MapPoint, SpeciesInfo, WorkspaceStatus
    from app.workspace.demo import DemoResult
    from app.workspace.engine import Engine
    from app.workspace.frames.cascade import CascadeResult, FrameIdentification
    from app.workspace.frames.detector import DetectionRun, DetectorEvaluation, LoadedDetector
    from app.workspace.frames.detector_training import DetectorTraining
    from app.workspace.identify import ImageInput
    from app.workspace.pipeline import EmbedReport
    from app.workspace.species import SpeciesChange
    from app.workspace.taxa import TaxaImport, TreePlace
    from embedder.export import ExportResult
    from embedder.training import TrainResult
    from index.catalog.detectors import DetectorRecord
    from index.catalog.lookup import CropHit
    from index.taxonomy import Lineage

__all__ = [
    "BuildResult",
    "CascadeResult",
    "DemoResult",
    "DetectionFigures",
    "FrameIdentification",
    "EvaluationSummary",
    "GenerationChange",
    "Identification",
    "IdentificationRecord",
    "RayConfig",
    "SpeciesChange",
    "SplitConfig",
    "TrainConfig",
    "VerifyResult",
    "Workspace",
    "demo_train_config",
    "Batcher",
    "MAX_BATCH",
    "WINDOW_S",
    "Overloaded",
    "embed_items",
    "check_home",
    "limit_threads",
    "THREADS_ENV",
    "threads_for",
    "usable_cores",
    "resolve_home",
    "run_demo",
]

log = logging.getLogger(__name__)


class Workspace:
    """A home folder and the steps over it (see the module map above).

    ``home``: ``--home`` / ``$OCEANID_HOME`` / ``./data``. ``crop``: how boxes are cut.
    ``busy_timeout``: seconds to retry a catalog locked by another process.
    """

    def __init__(
        self,
        home: Path | str | None = None,
        crop: CropConfig = CropConfig(),
        busy_timeout: float = 10.0,
        device: str = "cpu",
        gpu_search: bool = True,
    ) -> None:
        """``device`` (auto | cpu | cuda) is where queries run: the encoder, and with faiss-gpu
        and ``gpu_search`` a GPU copy of the index for unfiltered search (filtered search stays
        on the CPU index; the explorer passes ``gpu_search=False``)."""
        from app.workspace.engine import load_engine
        from app.workspace.spaces import load_spaces

        self.device, self.gpu_search = device, gpu_search
        self.paths = Home.at(home)
        self.home: Path = self.paths.root
        self.crop = crop
        self.catalog = Catalog(self.paths.catalog, busy_timeout=busy_timeout)
        self._engines = EngineCache(
            lambda model_id: load_engine(
                self.catalog, self.paths, model_id, device=self.device, gpu_search=self.gpu_search
            )
        )
        self._spaces = SpacesCache(lambda tuned: load_spaces(self.catalog, self.paths, tuned, self.device))
        self._reads = CatalogReads(self.paths.catalog)  # prototypes version, taxa tree: until the catalog changes
        # Sessions of the explorer share one Workspace: writers (species add/remove) run one at
        # a time and publish a new generation built on a COPY of the live index; readers keep the
        # engine they hold (never changed in place) and load the new one on their next call.
        self._writer = HomeWriter(self.paths)  # and across processes: app.workspace.writer
        self._detectors = DetectorCache()  # the loaded detector (one at a time): detect and the cascade

    def reload(self) -> None:
        """Forget the loaded engines: the next query loads what the home holds now."""
        self._engines.clear()
        self._spaces.clear()

    def _tree(self) -> dict:
        """The catalog's lineages, read again only when the catalog changed."""
        from index.catalog.taxa import tree

        return self._reads.get("tree", lambda: tree(self.catalog))

    # -- ingestion ---------------------------------------------------------------
    def ingest_synthetic(
        self, species: int = 16, holdout: int = 4, frames: int = 400, seed: int = 0, progress: bool = False
    ) -> IngestReport:
        """Draw the synthetic reef (cached under sources/) and ingest it."""
        plan = ingesting.synthetic_plan(self.paths, species, holdout, frames, seed)
        return ingesting.ingest_plan(self.catalog, self.paths, self.crop, "synthetic", plan, progress)

    def ingest_coco(
        self,
        annotations: Path,
        images: Path | None = None,
        split: str | None = None,
        progress: bool = False,
        source_name: str | None = None,
    ) -> IngestReport:
        """Ingest a COCO detection file (boxes become crops); ``split`` pins every crop;
        ``source_name`` names the source (default ``coco``)."""
        plan = ingesting.coco_plan(annotations, images, split, source_name)
        return ingesting.ingest_plan(self.catalog, self.paths, self.crop, "coco", plan, progress, source_name)

    def ingest_yolo(self, data_yaml: Path, progress: bool = False, source_name: str | None = None) -> IngestReport:
        """Ingest a YOLO (Ultralytics / Roboflow) data set; splits pinned as its folders say;
        ``source_name`` names the source (default ``yolo``)."""
        plan = ingesting.yolo_plan(data_yaml, source_name)
        return ingesting.ingest_plan(self.catalog, self.paths, self.crop, "yolo", plan, progress, source_name)

    def ingest_folders(
        self,
        root: Path,
        group_pattern: str | None = None,
        split: str | None = None,
        progress: bool = False,
        source_name: str | None = None,
        lineages: Path | None = None,
    ) -> IngestReport:
        """Ingest class folders (one per species, every file a crop); ``source_name`` names
        the source (default ``folders``); ``lineages`` (else ``root/lineages.csv`` if there) is
        checked first and attached as ``taxa import`` would."""
        plan = ingesting.folders_plan(root, group_pattern, split, source_name)
        found = ingesting.folder_lineages(root, lineages, plan)
        report = ingesting.ingest_plan(self.catalog, self.paths, self.crop, "folders", plan, progress, source_name)
        return ingesting.attach_lineages(self.catalog, report, found) if found else report

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
        plan = ingesting.fathomnet_plan(
            self.catalog, self.paths, concepts, max_per_concept, workers, min_depth, max_depth, progress
        )
        return ingesting.ingest_plan(self.catalog, self.paths, self.crop, "fathomnet", plan, progress)

    # -- exploring and splitting ------------------------------------------------------
    def stats(self) -> Survey:
        """The survey of the catalog (crops per species, splits, sources, depths)."""
        return survey(self.catalog)

    def stats_plots(self, survey_: Survey, folder: Path) -> list[Path]:
        """Write the survey's PNG charts into ``folder``; returns the files written."""
        from app.report.plots import survey_plots

        return survey_plots(survey_, folder)

    def split(self, config: SplitConfig = SplitConfig(), force: bool = False) -> SplitSummary:
        """Assign train/val/test and hold species out (:func:`app.workspace.pipeline.split_home`:
        refused under trained models unless ``force``, which marks them stale)."""
        from app.workspace.pipeline import split_home

        return split_home(self.catalog, self.paths, config, force)

    # -- models, vectors, index --------------------------------------------------------
    def models(self) -> list[ModelInfo]:
        """Every model of the catalog, with its live generation and its stale mark."""
        from app.workspace import indexes

        return indexes.models(self.catalog, self.paths)

    def export_model(self, model: str | None = None, int8: bool = False) -> ExportResult:
        """Export a trained encoder to ONNX beside its weights (``oceanid models export``)."""
        from app.workspace.pipeline import export_existing

        return export_existing(self.catalog, self.paths, self.current_model(model), int8=int8)

    def current_model(self, model: str | None = None) -> str:
        """``model`` if given, else the last trained one. Raises EmptyIndex when none."""
        chosen = model or self.catalog.current_model()
        if not chosen:
            raise EmptyIndex("no model trained yet")
        return chosen

    def train(
        self, config: TrainConfig, model: str | None = None, resume: bool = False, progress: bool = False
    ) -> TrainResult:
        """Train an encoder on the train split (model id default: ``<backbone>-<loss>-d<dim>``)."""
        from app.workspace.pipeline import train_model

        model_id = model or default_model_id(config.backbone, config.loss, config.dim)
        if resume and not model:
            model_id = self.catalog.current_model() or model_id
        return train_model(self.catalog, self.paths, model_id, config, resume=resume, progress=progress)

    def embed(
        self,
        model: str | None = None,
        batch_size: int = 64,
        device: str = "auto",
        progress: bool = False,
        engine: str = "local",
        ray: RayConfig | None = None,
        general: bool | None = None,
    ) -> EmbedReport:
        """Embed every crop that has no vector for the model yet, in each of its spaces
        (:func:`app.workspace.building.embed_spaces`: ``engine`` local | ray, ``general``: start the
        general space, None: the default, on)."""
        from app.workspace.building import embed_spaces

        model_of = lambda: self.current_model(model)  # noqa: E731 - asked only when needed
        return embed_spaces(self.catalog, self.paths, model_of, batch_size, device, progress, engine, ray, general)

    def fit_prototypes(
        self, model: str | None = None, n_centres: int = 1, priors: str | None = None, prior_tau: float | None = None
    ) -> bool:
        """Fit the trained species' prototypes from the train split; write them (and the decision
        and scorers the engine reads) only when they changed. ``priors`` (train | balanced | a
        class,weight CSV) and ``prior_tau`` decide the class priors again (None: keep the stored).
        Returns whether anything was written."""
        from app.workspace.decisions import priors_request
        from app.workspace.pipeline import fit_prototypes

        request = priors_request(priors, prior_tau)
        _, written = fit_prototypes(self.catalog, self.current_model(model), n_centres, home=self.paths, priors=request)
        if written:
            self._engines.clear()
        return written

    def index_build(
        self,
        model: str | None = None,
        kind: str = "auto",
        device: str = "cpu",
        rebuild: bool = True,
        n_centres: int = 1,
        shards: int = 1,
        priors: str | None = None,
        prior_tau: float | None = None,
    ) -> BuildResult:
        """Fit the prototypes, then build a new index generation of each space from the stored vectors
        (:func:`app.workspace.building.build_spaces`; ``rebuild=False``, ``oceanid index build``:
        nothing is written when the live generation is current). ``priors`` / ``prior_tau``: the class
        priors to decide (:meth:`fit_prototypes`)."""
        from app.workspace.building import build_spaces

        with self._writer:  # built on the catalog as it is once no other writer runs
            model_id = self.current_model(model)
            refit = lambda: self.fit_prototypes(model_id, n_centres, priors, prior_tau)  # noqa: E731
            return build_spaces(
                self.catalog, self.paths, model_id, refit, self.reload, kind, device, rebuild, shards, n_centres
            )

    def index_verify(self, model: str | None = None, generation: str | None = None) -> VerifyResult:
        """Check a generation (default: the live one, of each space) against its manifest and the model."""
        from app.workspace.building import verify_spaces

        return verify_spaces(self.catalog, self.paths, self.current_model(model), generation)

    def index_prune(self, model: str | None = None, keep: int | None = None) -> GenerationChange:
        """Delete all but the newest ``keep`` generations (default 3; never the live one)."""
        from app.workspace import indexes

        return indexes.prune_generations(self.paths, self.current_model(model), keep)

    def index_rollback(self, model: str | None = None) -> GenerationChange:
        """Make the generation before the live one live again, verified like any load."""
        from app.workspace import indexes

        with self._writer:
            try:
                return indexes.rollback_generation(self.catalog, self.paths, self.current_model(model))
            finally:
                self._engines.clear()

    # -- queries ------------------------------------------------------------------------
    def engine_key(self, model: str | None = None) -> tuple[str, str | None, int]:
        """(model, live generation, prototypes version): changes whenever answers may change."""
        from index.vectors.generations import current_generation

        model_id = self.current_model(model or self._reads.get("current_model", self.catalog.current_model))
        version = self._reads.get(("prototypes_version", model_id), lambda: self.catalog.prototypes_version(model_id))
        return (model_id, current_generation(self.home, model_id), version)

    def engine(self, model: str | None = None) -> Engine:
        """The loaded query engine, cached until the live generation or prototypes change."""
        return self._engines.get(self.engine_key(model))

    def identify(
        self,
        images: Sequence[ImageInput],
        k: int = 5,
        model: str | None = None,
        names: Sequence[str] | None = None,
        progress: bool = False,
        decode: str = "probable",
        vectors: Any = None,
        neighbours: int = 0,
    ) -> list[Identification]:
        """Name the species in each image (or ``unknown``), and the deepest confident taxon
        (``decode``: probable | distance); unreadable images get ``error``. ``vectors``: the
        images' embeddings from :meth:`embed_query`, when they are searched with too."""
        from app.workspace.identify import identify
        from index.catalog.lookup import crop_species

        return identify(
            self.engine(model),
            list(images),
            names=names,
            k=k,
            progress=progress,
            tree=self._tree(),
            decode_method=decode,
            vectors=vectors,
            spaces=self.spaces(model),
            neighbours=neighbours,
            labels=lambda ids: crop_species(self.catalog, ids),
        )

    def spaces(self, model: str | None = None) -> Any:
        """Both vector spaces of the model with their stored decision (``spaces.TwoSpaces``), or None for
        a model with the tuned space only; cached until either space's generation or prototypes change."""
        from app.workspace.spaces import general_id

        tuned = self.engine(model)
        return self._spaces.get((self.engine_key(tuned.model_id), self.engine_key(general_id(tuned.model_id))), tuned)

    def embed_query(self, image: ImageInput, model: str | None = None) -> Any:
        """One image's (1, d) embedding, for :meth:`identify` (``vectors=``) and :meth:`search`
        both: the image is decoded and embedded once. Raises BadImage."""
        from app.workspace.identify import embed_query

        return embed_query(self.engine(model), image)

    # -- whole frames (app.workspace.frames) -------------------------------------------
    def detector_path(self, detector: str | Path | None = None) -> Path:
        """The folder of ``detector`` (an id or a folder), else of the catalog's current detector
        (``detect train`` makes it current). Raises NotFound (one line) when the home has none."""
        from app.workspace.frames.detector import resolve_detector

        return resolve_detector(self.catalog, self.paths, detector)[1]

    def identify_frames(
        self,
        frames: Sequence[ImageInput] = (),
        *,
        detector: str | Path | None = None,
        boxes: Path | None = None,
        min_score: float | None = None,
        k: int = 5,
        model: str | None = None,
        names: Sequence[str] | None = None,
        progress: bool = False,
        decode: str = "probable",
        neighbours: int = 0,
    ) -> CascadeResult:
        """Find every organism in each whole frame and identify it (:mod:`app.workspace.frames.cascade`).

        Boxes come from ``boxes`` (a COCO results file; with no ``frames``, the frames are the
        files it names) or else from the detector ``detector`` names (an id or a folder; default:
        the catalog's current one). ``min_score`` drops weaker boxes (default: 0.3 for the
        detector, none of a file's; boxes without a score are kept).
        """
        from app.workspace.frames.cascade import run_cascade

        return run_cascade(
            self.catalog,
            self.crop,
            lambda: self.engine(model),
            lambda: self.load_detector(detector),
            frames,
            boxes=boxes,
            min_score=min_score,
            k=k,
            names=names,
            progress=progress,
            decode=decode,
            neighbours=neighbours,
        )

    def draw_frames(self, result: CascadeResult, folder: Path) -> list[Path]:
        """Write each frame with its organisms' boxes and labels drawn as ``folder/<frame>.png``."""
        from app.workspace.frames.drawing import draw_frames

        return draw_frames(result.frames, folder)

    def annotate_frame(self, image: Image.Image, frame: FrameIdentification) -> Image.Image:
        """``image`` with ``frame``'s boxes and labels drawn on it (the explorer shows this)."""
        from app.workspace.frames.drawing import annotate

        return annotate(image, frame)

    def cut_box(self, image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
        """The crop of ``box`` in ``image``, cut as every training crop is (``index.ingest.crops``)."""
        from index.ingest.crops import cut_crop

        return cut_crop(image, box, self.crop)

    def write_coco(self, result: CascadeResult, path: Path, model: str | None = None) -> Path:
        """Write the identified boxes as a COCO document (category = the species named, or
        ``unknown``); pycocotools reads it with ``COCO(path)``, its ``annotations`` with ``loadRes``."""
        from app.workspace.frames.cascade import write_coco

        return write_coco(self.engine(model), result, path)

    def save_metadata(
        self,
        depth: Any = None,
        date: Any = None,
        latitude: Any = None,
        longitude: Any = None,
        source: str | None = None,
        sidecar: Path | None = None,
    ) -> Any:
        """The depth, date, position and source :meth:`save_predicted` gives the frames it saves
        (``app.workspace.frame_metadata``), checked now, before any work. Raises InvalidInput / SourceError."""
        from app.workspace.frame_metadata import save_metadata

        return save_metadata(depth, date, latitude, longitude, source, sidecar)

    def save_predicted(self, result: CascadeResult, model: str | None = None, metadata: Any = None) -> IngestReport:
        """Add every organism found in a frame file to the catalog as a *predicted* crop, embedded
        and indexed (``--where origin=predicted``); frames given as bytes are left out.
        ``metadata`` (:meth:`save_metadata`): each frame's depth, date, position and source."""
        from app.workspace.frames.predicted import save_predicted

        return save_predicted(
            self.catalog,
            self.home,
            self.crop,
            result,
            metadata,
            writer=self._writer,
            make_searchable=lambda: (self.embed(model, progress=False), self.index_build(model, rebuild=False)),
            refresh=self.reload,
        )

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
                self._engines.clear()

    def crop_files(self, crop_ids: Sequence[int]) -> list[Path]:
        """The cached crop file of each catalog crop id. Raises NotFound."""
        from index.catalog.lookup import crop_files

        return crop_files(self.catalog, self.home, crop_ids)

    def count(self, images: Sequence[Any] = (), where: str | None = None, model: str | None = None) -> Any:
        """Organisms per taxon in ``images`` or the catalog crops ``where`` selects, raw and adjusted (``counting``)."""
        from app.workspace import counting

        identify = lambda files: self.identify(files, k=1, model=model)  # noqa: E731
        return counting.count(self.engine(model), self.catalog, identify, images, where, home=self.paths)

    def search(
        self,
        query: ImageInput | int | Any,
        k: int = 10,
        where: str | None = None,
        model: str | None = None,
        space: str | None = None,
    ) -> list[CropHit]:
        """The k crops nearest an image, its :meth:`embed_query` embedding or a catalog crop id
        (its stored vector), inside an optional filter. ``space``: tuned | general | fused (default:
        ``space_search.SEARCH_SPACE`` where the model has both spaces, else tuned; an embedding given as
        ``query`` is the tuned space's)."""
        from app.workspace.identify import search
        from app.workspace.space_search import search_space
        from index.catalog.lookup import allowed_ids

        allowed = None
        if where and where.strip():  # a filter's ids are read again only when the catalog changed
            allowed = self._reads.get(("allowed", where), lambda: allowed_ids(self.catalog, where))
        return search_space(
            self.engine(model),
            lambda: self.spaces(model),
            self.catalog,
            self.paths,
            query,
            k,
            where,
            allowed,
            space,
            search,
        )

    def species_add(
        self,
        name: str,
        images: Sequence[ImageInput],
        genus: str | None = None,
        family: str | None = None,
        model: str | None = None,
        correct: bool = False,
    ) -> SpeciesChange:
        """Add a species from a few examples, without retraining, in both vector spaces; all or
        nothing. ``genus`` / ``family`` fill what the catalog lacks and change what it knows only
        with ``correct``."""
        from app.workspace.species import add_species_all_spaces

        with self._writer:  # the engine (live generation, prototypes) is read once the lock is held
            return add_species_all_spaces(
                self.spaces(model),
                lambda: self._engines.get(self.engine_key(model), fresh=True),
                lambda: self.engine(model),
                self.catalog,
                self.paths,
                name,
                images,
                genus,
                family,
                self.crop,
                correct,
                self.reload,
            )

    def discovery(self, model: str | None = None) -> Any:
        """The discover steps (``app.workspace.discover.Discoverer``): cluster, list, show, name, export."""
        from app.workspace.discover import Discoverer

        return Discoverer(
            self.catalog, self.paths, lambda: self.engine(model), lambda: self.spaces(model),
            lambda name, files, genus=None, family=None: self.species_add(name, files, genus, family, model),
            self._tree,
        )  # fmt: skip

    def species_remove(self, name: str, model: str | None = None) -> SpeciesChange:
        """Remove a species added with :meth:`species_add` (from both vector spaces)."""
        from app.workspace.species import remove_species_all_spaces

        with self._writer:
            fresh = lambda: self._engines.get(self.engine_key(model), fresh=True)  # noqa: E731
            return remove_species_all_spaces(self.spaces(model), fresh, self.catalog, self.paths, name, self.reload)

    # -- annotation tools (app.workspace.annotation_tool: Label Studio's accepted annotations) --
    def annotation_store(
        self, note: Any, min_examples: int | None = None, model: str | None = None, on_recallable: Any = None
    ) -> Any:
        """Keep a ToolAnnotation as truth crops, searchable at once -> AnnotationChange."""
        from app.workspace import annotation_tool as tool

        steps = self._tool_steps(model)
        return tool.store_annotation(
            self.catalog, self.paths, self.crop, note, steps, min_examples or tool.MIN_EXAMPLES, on_recallable
        )

    def annotation_forget(
        self,
        project: int,
        annotation: int,
        min_examples: int | None = None,
        model: str | None = None,
        on_recallable: Any = None,
    ) -> Any:
        """Undo :meth:`annotation_store` for one annotation -> AnnotationChange."""
        from app.workspace import annotation_tool as tool

        steps = self._tool_steps(model)
        return tool.forget_annotation(
            self.catalog, self.paths, project, annotation, steps, min_examples or tool.MIN_EXAMPLES, on_recallable
        )

    def _tool_steps(self, model: str | None) -> Any:
        """This workspace's steps for one model, as the annotation steps call them (``ToolSteps``)."""
        from app.workspace.annotation_tool import ToolSteps

        return ToolSteps(
            engine=lambda: self.engine(model),
            writer=self._writer,
            build=lambda: self.index_build(model, rebuild=False),
            add_species=lambda name, files: self.species_add(name, files, model=model),
            remove_species=lambda name: self.species_remove(name, model),
            refresh=self._engines.clear,
        )

    def embed_images(self, images: Sequence[Any], model: str | None = None) -> Any:
        """Decoded images -> their (n, d) embeddings, batched (for identify ``vectors=`` and recall)."""
        from app.workspace.annotation_tool import embed_images

        return embed_images(self.engine(model), images)

    def annotation_recall(self, items: Any, model: str | None = None) -> list[tuple[str, float] | None]:
        """Per image (or vector), the label a person gave a near-duplicate of it, else None."""
        from app.workspace.annotation_tool import recall

        return recall(self.catalog, lambda: self.engine(model), items)

    def annotation_tag(self, model: str | None = None) -> str | None:
        """A digest of the tool crops recall finds now (None: none); changes when one is stored or removed."""
        from app.workspace.annotation_tool import recall_tag

        return recall_tag(self.catalog, self.engine_key(model)[0])

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(
        self,
        report: Path | None = None,
        model: str | None = None,
        map_method: str = "pca",
        seed: int = 0,
        progress: bool = False,
    ) -> EvaluationSummary:
        """Evaluate the live model and write the report folder (default reports/latest); when the
        catalog lists a detector, also grade whole frames through the cascade (``detection``)."""
        from app.workspace.evaluation import evaluate_and_report

        self.catalog.ensure_schema()  # a home that cannot be written is one line before the work
        return evaluate_and_report(
            self.engine(model),
            self.catalog,
            self.paths,
            report,
            map_method,
            seed,
            lambda engine: self._evaluate_frames(engine, progress),
        )

    def _evaluate_frames(self, engine: Engine, progress: bool = False) -> DetectionFigures | None:
        """The cascade, with the catalog's current detector, on the held-out frames
        (:func:`app.workspace.frames.grading.evaluate_frames`); None when there is none to grade."""
        from app.workspace.frames.grading import evaluate_frames

        return evaluate_frames(self.catalog, self.home, self.crop, engine, self.load_detector, progress)

    def last_evaluation(self) -> EvaluationSummary | None:
        """The summary of the last `oceanid evaluate`, with ``report_dir``; None if never run."""
        from app.workspace.evaluation import last_evaluation

        return last_evaluation(self.catalog)

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

    def embedding_map(self, method: str = "pca", max_points: int = 3000, model: str | None = None) -> list[MapPoint]:
        """The embedded crops in 2-D (PCA or UMAP)."""
        from app.workspace.browse import embedding_map

        return embedding_map(self.catalog, self.engine(model), self.paths, method, max_points)

    # -- the class-agnostic detector (app.workspace.frames.detector) -------------------
    def detect_train(
        self,
        arch: str = "fcos",
        image_size: int = 384,
        epochs: int = 8,
        device: str = "cpu",
        detector: str | None = None,
        resume: bool = False,
        max_epochs_now: int | None = None,
        progress: bool = False,
        **options: Any,
    ) -> DetectorTraining:
        """Train a detector on the catalog's frames with boxes (``models/<detector-id>/``, listed in
        the catalog and made current). ``options``: batch_size, lr, fpn_channels, pretrained."""
        from app.workspace.frames.detector_training import train_detector

        return train_detector(
            self.catalog,
            self.paths,
            arch=arch,
            image_size=image_size,
            epochs=epochs,
            device=device,
            detector_id=detector,
            resume=resume,
            max_epochs_now=max_epochs_now,
            progress=progress,
            **options,
        )

    def detectors(self) -> list[DetectorRecord]:
        """The catalog's detectors, oldest first."""
        from app.workspace.frames.detector import detectors

        return detectors(self.catalog)

    def current_detector(self) -> str | None:
        """The detector id every command uses when none is named (the last trained)."""
        return self.catalog.current_detector() if self.catalog.exists() else None

    def load_detector(self, detector: str | Path | None = None) -> LoadedDetector:
        """``detector`` (an id or a folder) or the current one, loaded on this workspace's device and
        cached while its weights are unchanged. Raises NotFound when the home has none."""
        return self._detectors.get(self.catalog, self.paths, detector, self.device)

    def detect(
        self,
        frames: Sequence[Path],
        names: Sequence[str] | None = None,
        min_score: float | None = None,
        detector: str | Path | None = None,
    ) -> DetectionRun:
        """Boxes with scores in each whole frame; unusable frames get a one-line ``error``."""
        from app.workspace.frames.detector import detect_frames

        return detect_frames(self.load_detector(detector), frames, names, min_score)

    def detections_coco(self, run: DetectionRun, path: Path | None = None) -> dict:
        """A detect run as a COCO document (images, categories, annotations = COCO results),
        written atomically to ``path`` when given."""
        from app.workspace.frames.detector import detections_coco

        return detections_coco(run, path)

    def detect_evaluate(self, split: str | None = None, detector: str | Path | None = None) -> DetectorEvaluation:
        """pycocotools mAP@0.5, mAP@0.5:0.95, recall@0.5 on held-out frames (test, else val)."""
        from app.workspace.frames.detector import evaluate_detector

        return evaluate_detector(self.catalog, self.paths, self.load_detector(detector), split)


#: names that load with their step module on first use (``import app.workspace`` stays light: no faiss,
#: no pipeline): name -> (module, attribute)
LAZY = {
    "run_demo": ("app.workspace.demo", "run_demo"),
    "demo_train_config": ("app.workspace.demo", "demo_train_config"),
    "DemoResult": ("app.workspace.demo", "DemoResult"),
    "SpeciesChange": ("app.workspace.species", "SpeciesChange"),
    "TaxaImport": ("app.workspace.taxa", "TaxaImport"),
    "TreePlace": ("app.workspace.taxa", "TreePlace"),
    # what an annotation tool sends, and what it changes
    "ToolAnnotation": ("app.workspace.annotation_tool", "ToolAnnotation"),
    "ToolBox": ("app.workspace.annotation_tool", "ToolBox"),
    "AnnotationChange": ("app.workspace.annotation_tool", "AnnotationChange"),
    # "species 0.93" / "unknown (score 0.41 < 0.62)": how a box is labelled
    "organism_label": ("app.workspace.frames.drawing", "label"),
    "CascadeResult": ("app.workspace.frames.cascade", "CascadeResult"),
    "FrameIdentification": ("app.workspace.frames.cascade", "FrameIdentification"),
    # result types, for the API's schemas
    "CropHit": ("index.catalog.lookup", "CropHit"),
    "SpeciesInfo": ("app.workspace.browse", "SpeciesInfo"),
    "WorkspaceStatus": ("app.workspace.browse", "WorkspaceStatus"),
}


def __getattr__(name: str) -> Any:
    """The :data:`LAZY` names, loaded on first use."""
    if name not in LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = LAZY[name]
    return getattr(importlib.import_module(module), attribute)
