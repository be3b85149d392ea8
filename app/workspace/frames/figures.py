"""The whole-frame figures of ``oceanid evaluate`` (made by :mod:`app.workspace.frames.grading`).

Plain dataclasses with no import of the cascade, so that ``EvaluationSummary`` (which holds a
``DetectionFigures``) can read them back from ``eval.json`` without importing what runs frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CascadeFigures:
    """The cascade on a set of frames with ground truth (fractions are None when nothing is counted)."""

    frames: int  # frames graded (skipped frames excluded)
    detections: int  # organisms the cascade answered with (boxes >= min_score)
    min_score: float
    map50: float  # pycocotools over every box the detector keeps
    map: float  # mAP@0.5:0.95
    recall50: float  # recall at IoU 0.5, up to 100 boxes a frame
    organisms: int  # ground-truth organisms in the graded frames
    found: int  # of them, matched (IoU >= 0.5) by a box the cascade answered with
    known_organisms: int  # of a species the engine knows (trained or added)
    found_known: int
    named: int  # found and named as their species
    held_out_organisms: int  # of a species the engine has no prototypes of
    found_held_out: int
    flagged_unknown: int  # found and answered ``unknown``
    found_and_named: float | None  # named / known_organisms
    named_when_found: float | None  # named / found_known
    found_and_flagged_unknown: float | None  # flagged_unknown / held_out_organisms
    detect_ms_per_frame: float | None  # median
    cascade_ms_per_frame: float | None  # median
    cascade_ms_per_frame_mean: float | None
    skipped: tuple[tuple[str, str], ...] = ()  # (frame, one-line reason): frames that could not be read

    def to_dict(self) -> dict:
        d = asdict(self)
        d["skipped"] = [list(s) for s in self.skipped]
        return d


@dataclass(frozen=True)
class DetectionFigures:
    """``oceanid evaluate``'s whole-frame section: the detector ``identify --frames`` uses by
    default, graded with the cascade on the held-out frames (``split``: test, else val)."""

    detector_id: str
    split: str
    cascade: CascadeFigures  # mAP / recall@0.5, found and named, found and flagged unknown, latency

    def to_dict(self) -> dict[str, Any]:
        return {"detector_id": self.detector_id, "split": self.split, "cascade": self.cascade.to_dict()}
