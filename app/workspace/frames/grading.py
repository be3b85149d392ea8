"""The whole-frame cascade graded on frames with ground truth: boxes, names, unknowns, latency.

::

    TruthFrame (index.catalog.frames) -> BoxFinder (every box the detector keeps) -> index.metrics.boxes.box_metrics
                              -> the boxes >= min_score -> app.workspace.frames.cascade.identify_frames
                              -> index.metrics.boxes.match_truth (COCOeval, IoU 0.5) -> CascadeFigures

One frame at a time, after one untimed warm-up frame: ``detect`` is the box finder's share of
the frame, ``cascade`` the whole ``identify_frames`` call (decode, detect, cut, embed, score).
mAP and recall@0.5 grade every box the detector keeps (its own score threshold, as
``oceanid detect evaluate`` does); the end-to-end figures grade the organisms the cascade
answers with (boxes >= ``min_score``). A ground-truth organism is of a *known* species when
the engine has prototypes of its concept (trained or added), else of a *held-out* one; found
means matched at IoU >= 0.5; named means the matched box's answer is its species; flagged means
the matched box's answer is ``unknown``. Both ``oceanid evaluate`` (:func:`evaluate_frames`) and
``bench/cascade.py`` use this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from app.workspace.engine import Engine
from app.workspace.frames.boxes import BoxFinder, detector_finder
from app.workspace.frames.cascade import identify_frames
from app.workspace.frames.detector import LoadedDetector, held_out_split
from app.workspace.frames.figures import CascadeFigures, DetectionFigures
from index.catalog.catalog import Catalog
from index.catalog.detectors import frame_split, list_detectors
from index.catalog.frames import TruthFrame, truth_frames
from index.errors import NotFound
from index.ingest.crops import CropConfig
from index.metrics.boxes import box_metrics, match_truth

__all__ = ["CascadeFigures", "DetectionFigures", "cascade_figures", "evaluate_frames", "held_out_frames"]

log = logging.getLogger(__name__)


def held_out_frames(frames: Sequence[TruthFrame]) -> tuple[str, list[TruthFrame]]:
    """(split, frames): the frames of :func:`~app.workspace.frames.detector.held_out_split` (test
    when there are any, else val), each frame's split by :func:`index.catalog.detectors.frame_split`
    (the detector's rule: a frame's boxes never straddle splits), as ``oceanid detect evaluate`` chooses them."""
    by_split: dict[str, list[TruthFrame]] = {}
    for frame in frames:
        if len(frame.boxes):
            by_split.setdefault(frame_split(list(frame.splits)), []).append(frame)
    split = held_out_split(by_split)
    return split, by_split.get(split, [])


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _ms(seconds: list[float], how) -> float | None:
    return round(1000 * float(how(seconds)), 1) if seconds else None


def cascade_figures(
    engine: Engine,
    frames: Sequence[TruthFrame],
    find: BoxFinder,
    crop: CropConfig,
    min_score: float,
    tree: dict | None = None,
    names: Sequence[str] | None = None,
    progress: bool = False,
) -> CascadeFigures:
    """Grade the cascade of ``find`` (a BoxFinder returning every box the detector keeps, best
    first) on ``frames``; boxes under ``min_score`` are graded by mAP but not identified.

    ``names``: how each frame is named in ``skipped`` (default: its file name). A frame that
    cannot be read, or is too small, is skipped (one line in ``skipped``), never an error.
    """
    from tqdm import tqdm

    names = list(names) if names is not None else [f.path.name for f in frames]
    last: dict = {}  # the latest call's detector seconds and boxes: kept only when its frame is graded
    kept: list[list] = []

    def timed(images, keys):
        start = time.perf_counter()
        found = find(images, keys)
        last.update(seconds=time.perf_counter() - start, found=found)
        return [[b for b in boxes if b.score is None or b.score >= min_score] for boxes in found]

    def run(frame: TruthFrame, name: str):
        return identify_frames(engine, [frame.path], timed, crop, names=[name], tree=tree)[0]

    used, answers, skipped, detect_s, cascade_s = [], [], [], [], []
    warm = False
    for frame, name in tqdm(list(zip(frames, names, strict=True)), desc="cascade", unit="frame", disable=not progress):
        if not warm:  # the first use loads the encoder; untimed, answers thrown away
            warm = run(frame, name).error is None
        last.clear()
        start = time.perf_counter()
        result = run(frame, name)
        seconds = time.perf_counter() - start
        if result.error is not None:
            skipped.append((name, result.error))
            log.warning("cascade evaluation skips %s: %s", name, result.error)
            continue
        used.append(frame)
        answers.append(result.organisms)
        kept.extend(last["found"])
        detect_s.append(last["seconds"])
        cascade_s.append(seconds)
    all_boxes = [np.asarray([b.box for b in f], np.float32).reshape(-1, 4) for f in kept]
    all_scores = [np.asarray([1.0 if b.score is None else b.score for b in f], np.float32) for f in kept]
    sizes = [(f.width, f.height) for f in used]
    metrics = box_metrics([f.boxes for f in used], sizes, all_boxes, all_scores)
    matched = match_truth(
        [f.boxes for f in used],
        sizes,
        [np.asarray([o.box for o in a], np.float32).reshape(-1, 4) for a in answers],
        [np.asarray([1.0 if o.detection_score is None else o.detection_score for o in a], np.float32) for a in answers],
    )
    known = set(engine.prototypes.names)
    counts = dict.fromkeys(("known", "found_known", "named", "held", "found_held", "flagged"), 0)
    for frame, organisms, hits in zip(used, answers, matched, strict=True):
        for concept, d in zip(frame.concepts, hits, strict=True):
            answer = organisms[d] if d >= 0 else None
            if concept in known:
                counts["known"] += 1
                counts["found_known"] += answer is not None
                counts["named"] += answer is not None and answer.species == concept
            else:
                counts["held"] += 1
                counts["found_held"] += answer is not None
                counts["flagged"] += answer is not None and answer.unknown
    c = counts
    figures = CascadeFigures(
        frames=len(used),
        detections=sum(len(a) for a in answers),
        min_score=float(min_score),
        map50=metrics.map50,
        map=metrics.map,
        recall50=metrics.recall50,
        organisms=c["known"] + c["held"],
        found=c["found_known"] + c["found_held"],
        known_organisms=c["known"],
        found_known=c["found_known"],
        named=c["named"],
        held_out_organisms=c["held"],
        found_held_out=c["found_held"],
        flagged_unknown=c["flagged"],
        found_and_named=_share(c["named"], c["known"]),
        named_when_found=_share(c["named"], c["found_known"]),
        found_and_flagged_unknown=_share(c["flagged"], c["held"]),
        detect_ms_per_frame=_ms(detect_s, np.median),
        cascade_ms_per_frame=_ms(cascade_s, np.median),
        cascade_ms_per_frame_mean=_ms(cascade_s, np.mean),
        skipped=tuple(skipped),
    )
    log.info(
        "cascade evaluation: %d frames (%d skipped), %d organisms, %d found",
        figures.frames,
        len(skipped),
        figures.organisms,
        figures.found,
    )
    return figures


def evaluate_frames(
    catalog: Catalog,
    home: Path,
    crop: CropConfig,
    engine: Engine,
    load_detector: Callable[[], LoadedDetector],
    progress: bool = False,
) -> DetectionFigures | None:
    """``oceanid evaluate``'s whole-frame section: the cascade, with the detector ``load_detector``
    loads (the catalog's current one), on the held-out frames of the home folder ``home``, boxes
    cut with ``crop``; None when the catalog lists no detector, it cannot be loaded (its folder
    is gone, none is current) or no frame is held out (a warning says which)."""
    from index.catalog.taxa import tree

    if not list_detectors(catalog):
        return None
    try:
        loaded = load_detector()
    except NotFound as exc:
        log.warning("evaluate: no whole-frame figures: %s", exc)
        return None
    split, frames = held_out_frames(truth_frames(catalog, home))
    if not frames:
        log.warning("evaluate: no whole-frame figures: no test or val frame has a box")
        return None
    find = detector_finder(loaded, 0.0)  # every box it keeps: mAP needs them
    names = [str(f.path.relative_to(home)) if f.path.is_relative_to(home) else str(f.path) for f in frames]
    figures = cascade_figures(engine, frames, find, crop, loaded.min_score, tree(catalog), names, progress=progress)
    return DetectionFigures(loaded.detector_id, split, figures)
