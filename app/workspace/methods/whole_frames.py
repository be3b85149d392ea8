"""The Workspace's whole-frame methods (:mod:`app.workspace.frames`: the detector, the cascade,
drawing, COCO, saving what was found)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.workspace.frames import detector as detection
from app.workspace.methods import Parts
from index.ingest.crops import cut_crop
from index.records import IngestReport

if TYPE_CHECKING:
    from collections.abc import Sequence

    from PIL import Image

    from app.workspace.frames.cascade import CascadeResult, FrameIdentification
    from app.workspace.frames.detector import DetectionRun, DetectorEvaluation, LoadedDetector
    from app.workspace.frames.detector_training import DetectorTraining
    from app.workspace.identify import ImageInput
    from index.catalog.detectors import DetectorRecord


class WholeFrameMethods(Parts):
    """Detectors trained, loaded and evaluated; organisms found in whole frames and identified."""

    def detect_train(
        self,
        arch: str | None = None,
        image_size: int | None = None,
        epochs: int | None = None,
        device: str = "cpu",
        detector: str | None = None,
        resume: bool = False,
        max_epochs_now: int | None = None,
        progress: bool = False,
        **options: Any,
    ) -> DetectorTraining:
        """Train a detector on the catalog's frames with boxes (made current); ``options``: batch_size, lr, ...
        Settings left out are the architecture's defaults (``embedder.detection.defaults``; arch: YOLOX-Nano)."""
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
        return detection.detectors(self.catalog)

    def current_detector(self) -> str | None:
        """The detector id every command uses when none is named (the last trained)."""
        return detection.current_detector(self.catalog)

    def detector_min_score(self) -> float:
        """The current detector's own box score cut (its architecture's; read from the catalog, nothing loads);
        FCOS's 0.3 when the home has no detector."""
        from embedder.detection.defaults import box_score
        from index.catalog.detectors import detector_record
        from index.errors import NotFound

        current = self.current_detector()
        try:
            return box_score(detector_record(self.catalog, current).arch if current else None)
        except NotFound:  # a current id without its record: the fallback, not an error on a page
            return box_score(None)

    def detector_path(self, detector: str | Path | None = None) -> Path:
        """The folder of ``detector`` (an id or a folder), else of the current one. Raises NotFound."""
        return detection.resolve_detector(self.catalog, self.paths, detector)[1]

    def load_detector(self, detector: str | Path | None = None) -> LoadedDetector:
        """``detector`` or the current one, loaded on this workspace's device, cached while unchanged."""
        return self._detectors.get(self.catalog, self.paths, detector, self.device)

    def detect(
        self,
        frames: Sequence[Path],
        names: Sequence[str] | None = None,
        min_score: float | None = None,
        detector: str | Path | None = None,
    ) -> DetectionRun:
        """Boxes with scores in each whole frame; unusable frames get a one-line ``error``."""
        return detection.detect_frames(self.load_detector(detector), frames, names, min_score)

    def detections_coco(self, run: DetectionRun, path: Path | None = None) -> dict:
        """A detect run as a COCO document, written atomically to ``path`` when given."""
        return detection.detections_coco(run, path)

    def detect_evaluate(self, split: str | None = None, detector: str | Path | None = None) -> DetectorEvaluation:
        """pycocotools mAP@0.5, mAP@0.5:0.95, recall@0.5 on held-out frames (test, else val)."""
        return detection.evaluate_detector(self.catalog, self.paths, self.load_detector(detector), split)

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
        return save_predicted(
            self.catalog,
            self.home,
            self.crop,
            result,
            metadata,
            writer=self._writer,
            make_searchable=searchable,
            refresh=self.reload,
        )
