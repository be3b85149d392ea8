"""Class-agnostic box metrics and box-to-truth matching through pycocotools (never a hand-written
mAP or matcher) and COCO results files.

Boxes are numpy ``(n, 4)`` x, y, w, h pixels, one array per frame, as
:mod:`embedder.detection.predict` returns them and the catalog stores them.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from index.errors import InvalidInput

ORGANISM = 1  # the one COCO category id of the class-agnostic detector


@dataclass(frozen=True)
class BoxMetrics:
    """pycocotools' COCOeval (bbox, one category) over a set of frames.

    ``map50`` = AP at IoU 0.5, ``map`` = AP averaged over IoU 0.5:0.95, ``recall50`` =
    recall at IoU 0.5 with up to 100 detections per frame (all areas).
    """

    frames: int
    truth_boxes: int
    detections: int
    map50: float
    map: float
    recall50: float

    def to_dict(self) -> dict:
        return asdict(self)


def coco_ground_truth(
    truth: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]], names: Sequence[str] | None = None
) -> dict:
    """A COCO dataset dict (images 1..n, one category ``organism``) of ``truth`` boxes."""
    images, annotations = [], []
    for n, ((width, height), boxes) in enumerate(zip(sizes, truth, strict=True), 1):
        images.append(
            {
                "id": n,
                "width": int(width),
                "height": int(height),
                **({"file_name": names[n - 1]} if names is not None else {}),
            }
        )
        for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": n,
                    "category_id": ORGANISM,
                    "bbox": [float(v) for v in box],
                    "area": float(box[2] * box[3]),
                    "iscrowd": 0,
                }
            )
    return {"images": images, "annotations": annotations, "categories": [{"id": ORGANISM, "name": "organism"}]}


def coco_detections(
    boxes: Sequence[np.ndarray], scores: Sequence[np.ndarray], image_ids: Sequence[int] | None = None
) -> list[dict]:
    """COCO results: a list of ``{image_id, category_id, bbox [x, y, w, h], score}`` (frames 1..n
    unless ``image_ids`` are given)."""
    ids = range(1, len(boxes) + 1) if image_ids is None else image_ids
    out = []
    for image_id, frame_boxes, frame_scores in zip(ids, boxes, scores, strict=True):
        for box, score in zip(
            np.asarray(frame_boxes).reshape(-1, 4), np.asarray(frame_scores).reshape(-1), strict=False
        ):
            out.append(
                {
                    "image_id": int(image_id),
                    "category_id": ORGANISM,
                    "bbox": [round(float(v), 2) for v in box],
                    "score": round(float(score), 5),
                }
            )
    return out


def _evaluated(
    truth: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]], results: list[dict], iou: float | None = None
):
    """pycocotools' COCOeval (bbox) of ``results`` against ``truth``, evaluated per frame; with
    ``iou``, class-agnostic at that one IoU threshold over all areas (what matching needs)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and summary
        gt = COCO()
        gt.dataset = coco_ground_truth(truth, sizes)
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), iouType="bbox")
        if iou is not None:
            ev.params.useCats = 0
            ev.params.iouThrs = np.array([float(iou)])
            ev.params.maxDets = [100]
            ev.params.areaRng, ev.params.areaRngLbl = [ev.params.areaRng[0]], ["all"]
        ev.evaluate()
    return ev


def match_truth(
    truth: Sequence[np.ndarray],
    sizes: Sequence[tuple[int, int]],
    boxes: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    iou: float = 0.5,
) -> list[np.ndarray]:
    """Which detection pycocotools matches to each ground-truth box, frame by frame.

    ``truth`` / ``boxes``: one ``(n, 4)`` x, y, w, h array per frame; ``scores``: one ``(m,)``
    array per frame, beside ``boxes``. COCOeval matches class-agnostically (``useCats = 0``),
    greedily from the best-scored of each frame's 100 best detections, each to the unmatched
    truth box it overlaps most with IoU >= ``iou``. Returns one ``(n,)`` int64 array per frame:
    the index into that frame's ``boxes`` of the detection matched to each truth box, -1 for none.
    Raises InvalidInput for an ``iou`` outside (0, 1].
    """
    if not 0.0 < iou <= 1.0:
        raise InvalidInput(f"IoU threshold must be within (0, 1], got {iou:g}")
    truth = [np.asarray(t, dtype=np.float64).reshape(-1, 4) for t in truth]
    out = [np.full(len(t), -1, dtype=np.int64) for t in truth]
    results = coco_detections(boxes, scores)
    if not results or not any(len(t) for t in truth):  # loadRes refuses an empty list
        return out
    # coco_ground_truth numbers truth boxes 1.. and loadRes numbers results 1.., both in frame order.
    truth_at = [(f, n) for f, t in enumerate(truth) for n in range(len(t))]
    found_at = [(f, n) for f, b in enumerate(boxes) for n in range(len(np.asarray(b).reshape(-1, 4)))]
    ev = _evaluated(truth, sizes, results, iou)
    for e in ev.evalImgs:
        if e is None:
            continue
        for g, d in zip(e["gtIds"], e["gtMatches"][0], strict=False):
            if d > 0:
                frame, n = truth_at[int(g) - 1]
                out[frame][n] = found_at[int(d) - 1][1]
    return out


def box_metrics(
    truth: Sequence[np.ndarray],
    sizes: Sequence[tuple[int, int]],
    boxes: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
) -> BoxMetrics:
    """Evaluate detections (``boxes`` / ``scores`` per frame) against ``truth`` with pycocotools."""
    results = coco_detections(boxes, scores)
    n_truth = int(sum(len(np.asarray(t).reshape(-1, 4)) for t in truth))
    if not results or n_truth == 0:  # loadRes refuses an empty list; nothing found (or nothing to find) scores 0
        return BoxMetrics(len(truth), n_truth, len(results), 0.0, 0.0, 0.0)
    ev = _evaluated(truth, sizes, results)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.accumulate()
        ev.summarize()
    m = list(ev.params.maxDets).index(100)
    recall = ev.eval["recall"][0, 0, 0, m]  # [IoU 0.5, the one category, area all, maxDets 100]
    clean = lambda v: max(0.0, float(v))  # noqa: E731 - pycocotools writes -1 for "no ground truth"
    return BoxMetrics(
        len(truth),
        n_truth,
        len(results),
        round(clean(ev.stats[1]), 4),
        round(clean(ev.stats[0]), 4),
        round(clean(recall), 4),
    )
