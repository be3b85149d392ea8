"""Where a frame's boxes come from: the detector (:func:`detector_finder`) or another tool's COCO
results file (``--boxes``: :func:`box_source`, :func:`detections_frames`, :func:`file_finder`). A
:data:`BoxFinder` is what the cascade (:mod:`app.workspace.frames.cascade`) and its grading call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from app.workspace.frames.detector import LoadedDetector
from index.errors import InvalidInput, NotFound
from index.sources.detections import DetectedBox, match_detections

#: frames (upright RGB) -> the boxes found in each, in frame order
BoxFinder = Callable[[Sequence[Image.Image], Sequence[Path | None]], list[list[DetectedBox]]]


@dataclass(frozen=True)
class BoxSource:
    """Where a frame's boxes come from: ``kind`` is ``detector`` (a model folder) or ``detections``
    (a COCO results file)."""

    kind: str
    path: Path

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": str(self.path)}


def box_source(path: Path) -> BoxSource:
    """The box source ``--boxes`` names: a ``.json`` detections file. Raises NotFound /
    InvalidInput with one line."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInput(f"--boxes {path} is a folder; give a COCO results .json file")
    if path.is_file():
        return BoxSource("detections", path)
    raise NotFound(f"{path}: no such detections file")


def detector_finder(loaded: LoadedDetector, min_score: float) -> BoxFinder:
    """A BoxFinder running a loaded detector (``Workspace.load_detector``: the one cache)."""
    from embedder.detection.predict import detect_images

    def find(images: Sequence[Image.Image], _: Sequence[Path | None]) -> list[list[DetectedBox]]:
        found = detect_images(loaded.model, loaded.config, list(images), min_score=min_score, device=loaded.device)
        return [
            [DetectedBox(tuple(float(v) for v in b), float(s)) for b, s in zip(f.boxes, f.scores, strict=False)]
            for f in found
        ]

    return find


def file_finder(boxes: dict[Path, list[DetectedBox]], min_score: float) -> BoxFinder:
    """A BoxFinder reading boxes from a matched detections file (boxes without a score are kept)."""

    def find(_: Sequence[Image.Image], frames: Sequence[Path | None]) -> list[list[DetectedBox]]:
        out = []
        for frame in frames:
            given = boxes.get(Path(frame).absolute(), []) if frame is not None else []
            out.append(
                sorted(
                    (b for b in given if b.score is None or b.score >= min_score),
                    key=lambda b: -(b.score if b.score is not None else float("inf")),
                )
            )
        return out

    return find


def detections_frames(
    path: Path, frames: Sequence[Path] | None
) -> tuple[list[Path], dict[Path, list[DetectedBox]], list[tuple[str, str]]]:
    """(frames to process, boxes per frame, skipped lines) of a detections file (:mod:`index.sources.detections`)."""
    matched = match_detections(path, frames)
    return [f for f, _ in matched.frames], dict(matched.frames), matched.skipped
