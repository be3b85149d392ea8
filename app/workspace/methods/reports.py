"""The Workspace's evaluation and browsing methods (:mod:`app.workspace.evaluation`, ``browse``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from app.workspace.methods import Parts
from app.workspace.results import EvaluationSummary

if TYPE_CHECKING:
    from app.workspace.browse import CropRef, MapPoint, SpeciesInfo, WorkspaceStatus


class ReportMethods(Parts):
    """The evaluation report, and what the explorer browses."""

    def evaluate(
        self,
        report: Path | None = None,
        model: str | None = None,
        map_method: str = "pca",
        seed: int = 0,
        progress: bool = False,
    ) -> EvaluationSummary:
        """Evaluate the live model (whole frames too, with a detector) and write the report folder."""
        from app.workspace.evaluation import evaluate_home

        engine = lambda: self.engine(model)  # noqa: E731 - loaded once the home is known writable
        return evaluate_home(
            self.catalog, self.paths, self.crop, engine, self.load_detector, report, map_method, seed, progress
        )

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
