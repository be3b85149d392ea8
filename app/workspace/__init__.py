"""The composer: a home folder and every step over it, the one thing the faces import.

``Workspace`` holds the home (catalog, images, crops, models, indexes, reports), its caches (engines,
spaces, detector, catalog reads) and the writer lock; each method is one call of a step function of a
module beside it (the table in docs/ARCHITECTURE.md says which; its docstring carries the detail).
Results are frozen dataclasses that live with the step that makes them (``to_dict()`` is what ``--json``
prints); this module re-exports them, the light ones at once and the rest on first use
(:data:`app.workspace.lazy_names.LAZY`), so ``import app.workspace`` loads no faiss, torch, scikit-learn
or matplotlib.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.workspace import ingesting
from app.workspace.batching import Batcher, Overloaded, embed_items
from app.workspace.catalog_reads import CatalogReads
from app.workspace.engine_cache import Engines
from app.workspace.frames.detector import DetectorCache
from app.workspace.identification import Identification, IdentificationRecord
from app.workspace.index_results import BuildResult, GenerationChange, ModelInfo, VerifyResult
from app.workspace.lazy_names import LAZY
from app.workspace.results import DetectionFigures, EvaluationSummary
from app.workspace.threads import THREADS_ENV, limit_threads, threads_for, usable_cores
from app.workspace.writer import HomeWriter
from embedder.ray_runner import RayConfig
from embedder.train_config import TrainConfig
from index.catalog.catalog import Catalog
from index.catalog.splits import SplitConfig, SplitSummary
from index.catalog.stats import Survey, survey
from index.home import Home, check_home, resolve_home
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

__all__ = ["BuildResult", "CascadeResult", "DemoResult", "DetectionFigures", "FrameIdentification", "Workspace"]
__all__ += ["EvaluationSummary", "GenerationChange", "Identification", "IdentificationRecord", "RayConfig"]
__all__ += ["SpeciesChange", "SplitConfig", "TrainConfig", "VerifyResult", "demo_train_config", "run_demo"]
__all__ += ["Batcher", "Overloaded", "embed_items", "check_home", "resolve_home"]
__all__ += ["limit_threads", "THREADS_ENV", "threads_for", "usable_cores"]


class Workspace:
    """A home folder and the steps over it (see the module map above).

    ``home``: ``--home`` / ``$OCEANID_HOME`` / ``./data``. ``crop``: how boxes are cut. ``busy_timeout``:
    seconds to retry a catalog locked by another process. ``device`` (auto | cpu | cuda) is where queries
    run: the encoder, and with faiss-gpu and ``gpu_search`` a GPU copy of the index for unfiltered search
    (filtered search stays on the CPU index; the explorer passes ``gpu_search=False``).
    """

    def __init__(
        self,
        home: Path | str | None = None,
        crop: CropConfig = CropConfig(),
        busy_timeout: float = 10.0,
        device: str = "cpu",
        gpu_search: bool = True,
    ) -> None:
        self.device, self.gpu_search = device, gpu_search
        self.paths = Home.at(home)
        self.home: Path = self.paths.root
        self.crop = crop
        self.catalog = Catalog(self.paths.catalog, busy_timeout=busy_timeout)
        self._reads = CatalogReads(self.paths.catalog)  # prototypes version, taxa tree: until the catalog changes
        self._engines = Engines(self.catalog, self.paths, self._reads, device, gpu_search)  # + the spaces
        # Sessions of the explorer share one Workspace: writers (species add/remove) run one at a time
        # and publish a new generation built on a COPY of the live index; readers keep the engine they
        # hold (never changed in place) and load the new one on their next call.
        self._writer = HomeWriter(self.paths)  # and across processes: app.workspace.writer
        self._detectors = DetectorCache()  # the loaded detector (one at a time): detect and the cascade

    def reload(self) -> None:
        """Forget the loaded engines: the next query loads what the home holds now."""
        self._engines.clear()

    def _tree(self) -> dict:
        """The catalog's lineages, read again only when the catalog changed."""
        from index.catalog.taxa import tree

        return self._reads.get("tree", lambda: tree(self.catalog))

    # -- ingestion (app.workspace.ingesting) -------------------------------------------
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
        return ingesting.ingest_coco(self.catalog, self.paths, self.crop, annotations, images, split, progress, source_name)

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
        """Ingest class folders (one per species, every file a crop), with their lineages when given or found."""
        args = (root, group_pattern, split, progress, source_name, lineages)
        return ingesting.ingest_folders(self.catalog, self.paths, self.crop, *args)

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
        args = (concepts, max_per_concept, workers, min_depth, max_depth, progress)
        return ingesting.ingest_fathomnet(self.catalog, self.paths, self.crop, *args)

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

    # -- models, vectors, index (app.workspace.building, indexes) -------------------------
    def models(self) -> list[ModelInfo]:
        """Every model of the catalog, with its live generation and its stale mark."""
        from app.workspace.indexes import models

        return models(self.catalog, self.paths)

    def export_model(self, model: str | None = None, int8: bool = False) -> ExportResult:
        """Export a trained encoder to ONNX beside its weights (``oceanid models export``)."""
        from app.workspace.pipeline import export_existing

        return export_existing(self.catalog, self.paths, self.current_model(model), int8=int8)

    def current_model(self, model: str | None = None) -> str:
        """``model`` if given, else the last trained one. Raises EmptyIndex when none."""
        return self._engines.model(model)

    def train(
        self, config: TrainConfig, model: str | None = None, resume: bool = False, progress: bool = False
    ) -> TrainResult:
        """Train an encoder on the train split (model id default: ``<backbone>-<loss>-d<dim>``)."""
        from app.workspace.building import train

        return train(self.catalog, self.paths, config, model, resume, progress)

    def embed(
        self,
        model: str | None = None,
        batch_size: int = 64,
        device: str = "auto",
        progress: bool = False,
        engine: str = "local",
        ray: RayConfig | None = None,
        general: bool = False,
    ) -> EmbedReport:
        """Embed every crop without a vector for the model yet, in each of its spaces (``engine``: local | ray)."""
        from app.workspace.building import embed_spaces

        model_of = lambda: self.current_model(model)  # noqa: E731 - asked only when needed
        return embed_spaces(self.catalog, self.paths, model_of, batch_size, device, progress, engine, ray, general)

    def fit_prototypes(
        self, model: str | None = None, n_centres: int = 1, priors: str | None = None, prior_tau: float | None = None
    ) -> bool:
        """Fit the trained species' prototypes; write them, the decision and scorers only when changed."""
        from app.workspace.building import refit_prototypes

        return refit_prototypes(self.catalog, self.paths, self._engines, model, n_centres, priors, prior_tau)

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
        """Fit the prototypes, then build a new index generation of each space (``rebuild=False``: if stale)."""
        from app.workspace.building import build_home

        args = (model, kind, device, rebuild, n_centres, shards, priors, prior_tau)
        return build_home(self._writer, self._engines, self.catalog, self.paths, *args)

    def index_verify(self, model: str | None = None, generation: str | None = None) -> VerifyResult:
        """Check a generation (default: the live one, of each space) against its manifest and the model."""
        from app.workspace.building import verify_spaces

        return verify_spaces(self.catalog, self.paths, self.current_model(model), generation)

    def index_prune(self, model: str | None = None, keep: int | None = None) -> GenerationChange:
        """Delete all but the newest ``keep`` generations (default 3; never the live one)."""
        from app.workspace.indexes import prune_generations

        return prune_generations(self.paths, self.current_model(model), keep)

    def index_rollback(self, model: str | None = None) -> GenerationChange:
        """Make the generation before the live one live again, verified like any load."""
        from app.workspace.indexes import rollback_home

        return rollback_home(self._writer, self._engines, self.catalog, self.paths, model)

    # -- queries (app.workspace.identify, space_search) ------------------------------------
    def engine_key(self, model: str | None = None) -> tuple[str, str | None, int]:
        """(model, live generation, prototypes version): changes whenever answers may change."""
        return self._engines.key(model)

    def engine(self, model: str | None = None) -> Engine:
        """The loaded query engine, cached until the live generation or prototypes change."""
        return self._engines.engine(model)

    def spaces(self, model: str | None = None) -> Any:
        """Both vector spaces of the model (``spaces.TwoSpaces``), or None for a tuned-only model."""
        return self._engines.spaces(model)

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
        """Name the species in each image (or ``unknown``) and the deepest confident taxon (``decode``)."""
        from app.workspace.identify import identify_home

        args = (images, k, names, progress, decode, vectors, neighbours)
        return identify_home(self.engine(model), self.spaces(model), self.catalog, self._tree(), *args)

    def embed_query(self, image: ImageInput, model: str | None = None) -> Any:
        """One image's (1, d) embedding, for :meth:`identify` (``vectors=``) and :meth:`search` both."""
        from app.workspace.identify import embed_query

        return embed_query(self.engine(model), image)

    def search(
        self,
        query: ImageInput | int | Any,
        k: int = 10,
        where: str | None = None,
        model: str | None = None,
        space: str | None = None,
    ) -> list[CropHit]:
        """The k crops nearest an image, an embedding or a catalog crop id, inside an optional filter."""
        from app.workspace.space_search import search_home

        return search_home(self._engines, self.catalog, self.paths, query, k, where, model, space)

    def count(self, images: Sequence[Any] = (), where: str | None = None, model: str | None = None) -> Any:
        """Organisms per taxon in ``images`` or the catalog crops ``where`` selects, raw and adjusted."""
        from app.workspace.counting import count

        identify = lambda files: self.identify(files, k=1, model=model)  # noqa: E731
        return count(self.engine(model), self.catalog, identify, images, where, home=self.paths)

    def crop_files(self, crop_ids: Sequence[int]) -> list[Path]:
        """The cached crop file of each catalog crop id. Raises NotFound."""
        from index.catalog.lookup import crop_files

        return crop_files(self.catalog, self.home, crop_ids)

    # -- species and taxa (app.workspace.species, taxa, discover) ---------------------------
    def species_add(
        self,
        name: str,
        images: Sequence[ImageInput],
        genus: str | None = None,
        family: str | None = None,
        model: str | None = None,
        correct: bool = False,
    ) -> SpeciesChange:
        """Add a species from a few examples, without retraining, in both vector spaces; all or nothing."""
        from app.workspace.species import add_species_all_spaces

        args = (name, images, genus, family, model, correct)
        return add_species_all_spaces(self._writer, self._engines, self.catalog, self.paths, self.crop, *args)

    def species_remove(self, name: str, model: str | None = None) -> SpeciesChange:
        """Remove a species added with :meth:`species_add` (from both vector spaces)."""
        from app.workspace.species import remove_species_all_spaces

        return remove_species_all_spaces(self._writer, self._engines, self.catalog, self.paths, name, model)

    def discovery(self, model: str | None = None) -> Any:
        """The discover steps (``app.workspace.discover.Discoverer``): cluster, list, show, name, export."""
        from app.workspace.discover import Discoverer

        add = lambda name, files, genus=None, family=None: self.species_add(name, files, genus, family, model)  # noqa: E731
        return Discoverer(self.catalog, self.paths, lambda: self.engine(model), lambda: self.spaces(model), add, self._tree)

    def taxa_show(self, name: str) -> Lineage:
        """The lineage of one taxon of the catalog. Raises NotFound."""
        from index.catalog.taxa import lineage

        return lineage(self.catalog, name)

    def taxa_place(self, name: str, top: int = 5) -> TreePlace:
        """A taxon's lineage and its ``top`` nearest relatives among the concepts with crops."""
        from app.workspace.taxa import place_in_tree

        return place_in_tree(self.catalog, name, top)

    def taxa_import(self, path: Path) -> TaxaImport:
        """Fill or correct the lineages of ingested concepts from a lineage CSV (its names win)."""
        from app.workspace.taxa import import_lineages_as_writer

        return import_lineages_as_writer(self._writer, self._engines, self.catalog, path)

    # -- annotation tools (app.workspace.annotation_tool: Label Studio's accepted annotations) --
    def annotation_store(self, note: Any, min_examples: int | None = None, model: str | None = None) -> Any:
        """Keep a ToolAnnotation as truth crops, searchable at once -> AnnotationChange."""
        from app.workspace.annotation_tool import store_annotation

        return store_annotation(self.catalog, self.paths, self.crop, note, self._tool_steps(model), min_examples)

    def annotation_forget(
        self, project: int, annotation: int, min_examples: int | None = None, model: str | None = None
    ) -> Any:
        """Undo :meth:`annotation_store` for one annotation -> AnnotationChange."""
        from app.workspace.annotation_tool import forget_annotation

        steps = self._tool_steps(model)
        return forget_annotation(self.catalog, self.paths, project, annotation, steps, min_examples)

    def _tool_steps(self, model: str | None) -> Any:
        """This workspace's steps for one model, as the annotation steps call them (``ToolSteps``)."""
        from app.workspace.annotation_tool import ToolSteps

        return ToolSteps(
            engine=lambda: self.engine(model),
            writer=self._writer,
            build=lambda: self.index_build(model, rebuild=False),
            add_species=lambda name, files: self.species_add(name, files, model=model),
            remove_species=lambda name: self.species_remove(name, model),
            refresh=self._engines.engines.clear,
        )

    def embed_images(self, images: Sequence[Any], model: str | None = None) -> Any:
        """Decoded images -> their (n, d) embeddings, batched (for identify ``vectors=`` and recall)."""
        from app.workspace.annotation_tool import embed_images

        return embed_images(self.engine(model), images)

    def annotation_recall(self, items: Any, model: str | None = None) -> list[tuple[str, float] | None]:
        """Per image (or vector), the label a person gave a near-duplicate of it, else None."""
        from app.workspace.annotation_tool import recall

        return recall(self.catalog, lambda: self.engine(model), items)

    # -- evaluation and browsing (app.workspace.evaluation, browse) --------------------------
    def evaluate(
        self,
        report: Path | None = None,
        model: str | None = None,
        map_method: str = "pca",
        seed: int = 0,
        progress: bool = False,
    ) -> EvaluationSummary:
        """Evaluate the live model (whole frames too when there is a detector) and write the report folder."""
        from app.workspace.evaluation import evaluate_home

        engine = lambda: self.engine(model)  # noqa: E731 - loaded once the home is known writable
        args = (report, map_method, seed, progress)
        return evaluate_home(self.catalog, self.paths, self.crop, engine, self.load_detector, *args)

    def last_evaluation(self) -> EvaluationSummary | None:
        """The summary of the last `oceanid evaluate`, with ``report_dir``; None if never run."""
        from app.workspace.evaluation import last_evaluation

        return last_evaluation(self.catalog)

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

    # -- whole frames (app.workspace.frames) -------------------------------------------
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
        """Train a detector on the catalog's frames with boxes (made current). ``options``: batch_size, lr, ..."""
        from app.workspace.frames.detector_training import train_detector

        args = dict(arch=arch, image_size=image_size, epochs=epochs, device=device, detector_id=detector, resume=resume)
        return train_detector(self.catalog, self.paths, max_epochs_now=max_epochs_now, progress=progress, **args, **options)

    def detectors(self) -> list[DetectorRecord]:
        """The catalog's detectors, oldest first."""
        from app.workspace.frames.detector import detectors

        return detectors(self.catalog)

    def current_detector(self) -> str | None:
        """The detector id every command uses when none is named (the last trained)."""
        from app.workspace.frames.detector import current_detector

        return current_detector(self.catalog)

    def detector_path(self, detector: str | Path | None = None) -> Path:
        """The folder of ``detector`` (an id or a folder), else of the current one. Raises NotFound."""
        from app.workspace.frames.detector import resolve_detector

        return resolve_detector(self.catalog, self.paths, detector)[1]

    def load_detector(self, detector: str | Path | None = None) -> LoadedDetector:
        """``detector`` or the current one, loaded and cached while its weights are unchanged."""
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
        """A detect run as a COCO document, written atomically to ``path`` when given."""
        from app.workspace.frames.detector import detections_coco

        return detections_coco(run, path)

    def detect_evaluate(self, split: str | None = None, detector: str | Path | None = None) -> DetectorEvaluation:
        """pycocotools mAP@0.5, mAP@0.5:0.95, recall@0.5 on held-out frames (test, else val)."""
        from app.workspace.frames.detector import evaluate_detector

        return evaluate_detector(self.catalog, self.paths, self.load_detector(detector), split)

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
        """Find every organism in each whole frame (boxes from ``boxes`` or the detector) and identify it."""
        from app.workspace.frames.cascade import run_cascade

        engine, detector_of = lambda: self.engine(model), lambda: self.load_detector(detector)
        options = dict(boxes=boxes, min_score=min_score, k=k, names=names, progress=progress, decode=decode)
        return run_cascade(self.catalog, self.crop, engine, detector_of, frames, neighbours=neighbours, **options)

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
        """Write the identified boxes as a COCO document (category = the species named, or ``unknown``)."""
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
        """The depth, date, position and source :meth:`save_predicted` gives the frames it saves, checked now."""
        from app.workspace.frame_metadata import save_metadata

        return save_metadata(depth, date, latitude, longitude, source, sidecar)

    def save_predicted(self, result: CascadeResult, model: str | None = None, metadata: Any = None) -> IngestReport:
        """Add every organism found in a frame file to the catalog as a *predicted* crop, embedded and indexed."""
        from app.workspace.frames.predicted import save_predicted

        searchable = lambda: (self.embed(model, progress=False), self.index_build(model, rebuild=False))  # noqa: E731
        args = (result, metadata, self._writer, searchable, self.reload)
        return save_predicted(self.catalog, self.home, self.crop, *args)


def __getattr__(name: str) -> Any:
    """The :data:`LAZY` names, loaded on first use."""
    if name not in LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = LAZY[name]
    return getattr(importlib.import_module(module), attribute)
