"""The composer: a home folder and every step over it, the one thing the faces import.

``Workspace`` holds the home (catalog, images, crops, models, indexes, reports), its caches (engines and
spaces: :class:`~app.workspace.engine_cache.Engines`; the detector; catalog reads) and the writer lock.
Each method is one call of a step function beside it, whose docstring carries the detail: the engines,
models, index and queries here, the other concerns in :mod:`app.workspace.methods` (ingestion, species
and taxa, annotations, reports, whole frames), which it inherits; docs/ARCHITECTURE.md maps them.
Results are frozen dataclasses that live with the step that makes them (``to_dict()`` is what ``--json``
prints); this module re-exports them, the light ones at once and the rest on first use
(:mod:`app.workspace.lazy_names`), so ``import app.workspace`` loads no faiss, torch, scikit-learn or
matplotlib: the steps that need them are imported by the methods that call them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.workspace.batching import MAX_BATCH, WINDOW_S, Batcher, Overloaded, embed_items
from app.workspace.catalog_reads import CatalogReads
from app.workspace.engine_cache import Engines
from app.workspace.frames.detector import DetectorCache
from app.workspace.identification import Identification, IdentificationRecord
from app.workspace.index_results import BuildResult, GenerationChange, ModelInfo, VerifyResult
from app.workspace.lazy_names import LAZY
from app.workspace.methods.annotations import AnnotationMethods
from app.workspace.methods.ingestion import IngestionMethods
from app.workspace.methods.reports import ReportMethods
from app.workspace.methods.species_and_taxa import SpeciesAndTaxaMethods
from app.workspace.methods.whole_frames import WholeFrameMethods
from app.workspace.results import DetectionFigures, EvaluationSummary
from app.workspace.threads import THREADS_ENV, limit_threads, threads_for, usable_cores
from app.workspace.writer import HomeWriter
from embedder.ray_runner import RayConfig
from embedder.train_config import TrainConfig
from index.catalog.catalog import Catalog
from index.catalog.splits import SplitConfig
from index.home import Home, check_home, resolve_home
from index.ingest.crops import CropConfig

if TYPE_CHECKING:
    from collections.abc import Sequence

    from app.workspace.demo import DemoResult
    from app.workspace.engine import Engine
    from app.workspace.frames.cascade import CascadeResult, FrameIdentification
    from app.workspace.identify import ImageInput
    from app.workspace.pipeline import EmbedReport
    from app.workspace.species import SpeciesChange
    from embedder.export import ExportResult
    from embedder.training import TrainResult
    from index.catalog.lookup import CropHit

__all__ = ["Workspace", "BuildResult", "CascadeResult", "DemoResult", "DetectionFigures", "FrameIdentification"]
__all__ += ["EvaluationSummary", "GenerationChange", "Identification", "IdentificationRecord", "RayConfig"]
__all__ += ["SpeciesChange", "SplitConfig", "TrainConfig", "VerifyResult", "demo_train_config", "run_demo"]
__all__ += ["Batcher", "MAX_BATCH", "WINDOW_S", "Overloaded", "embed_items", "check_home", "resolve_home"]
__all__ += ["limit_threads", "THREADS_ENV", "threads_for", "usable_cores"]


class Workspace(IngestionMethods, SpeciesAndTaxaMethods, AnnotationMethods, ReportMethods, WholeFrameMethods):
    """A home folder and the steps over it (see the module map above).

    ``home``: ``--home`` / ``$OCEANID_HOME`` / ``./data``. ``crop``: how boxes are cut. ``busy_timeout``:
    seconds to retry a catalog locked by another process. ``device`` (auto | cpu | cuda): where queries
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
        self._engines = Engines(self.catalog, self.paths, self._reads, device, gpu_search)
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
        general: bool | None = None,
    ) -> EmbedReport:
        """Embed every crop without a vector for the model yet, in each of its spaces (``engine``: local | ray)."""
        from app.workspace.building import embed_spaces

        model_of = lambda: self.current_model(model)  # noqa: E731 - asked only when needed
        return embed_spaces(self.catalog, self.paths, model_of, batch_size, device, progress, engine, ray, general)

    def fit_prototypes(
        self, model: str | None = None, n_centres: int = 1, priors: str | None = None, prior_tau: float | None = None
    ) -> bool:
        """Fit the trained species' prototypes; write them (and the decision, scorers) only when changed."""
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

        return build_home(
            self._writer,
            self._engines,
            self.catalog,
            self.paths,
            model,
            kind,
            device,
            rebuild,
            n_centres,
            shards,
            priors,
            prior_tau,
        )

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

        engine, tree, spaces = self.engine(model), self._tree(), self.spaces(model)
        return identify_home(
            engine, tree, spaces, self.catalog, images, k, names, progress, decode, vectors, neighbours
        )

    def identify_crops(
        self,
        crop_ids: Sequence[int],
        k: int = 5,
        model: str | None = None,
        decode: str = "probable",
        neighbours: int = 0,
    ) -> list[Identification]:
        """:meth:`identify` of catalog crops from their stored vectors (nothing decoded or embedded again)."""
        from app.workspace.identify_crops import identify_crops

        engine, tree, spaces = self.engine(model), self._tree(), self.spaces(model)
        return identify_crops(engine, tree, spaces, self.catalog, self.home, crop_ids, k, None, decode, neighbours)

    def look_up(
        self, query: Any, name: str = "query", k: int = 10, where: str | None = None, decode: str = "probable",
        model: str | None = None,
    ) -> Any:  # fmt: skip
        """An image (bytes, decoded, a file) or a catalog crop id -> LookUp: its answer and its k most similar crops."""
        from app.workspace.look_up import look_up

        return look_up(self, query, name, k, where, decode, model)

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


def __getattr__(name: str) -> Any:
    """The :data:`~app.workspace.lazy_names.LAZY` names, loaded on first use."""
    if name not in LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = LAZY[name]
    return getattr(importlib.import_module(module), attribute)
