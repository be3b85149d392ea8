"""Class-agnostic box metrics through pycocotools (never a hand-written mAP) and COCO results files.

Boxes are numpy ``(n, 4)`` x, y, w, h pixels, one array per frame, as
:mod:`embedder.detection.predict` returns them and the catalog stores them.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

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


def coco_ground_truth(truth: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]],
                      names: Sequence[str] | None = None) -> dict:
    """A COCO dataset dict (images 1..n, one category ``organism``) of ``truth`` boxes."""
    images, annotations = [], []
    for n, ((width, height), boxes) in enumerate(zip(sizes, truth, strict=True), 1):
        images.append({"id": n, "width": int(width), "height": int(height),
                       **({"file_name": names[n - 1]} if names is not None else {})})
        for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            annotations.append({"id": len(annotations) + 1, "image_id": n, "category_id": ORGANISM,
                                "bbox": [float(v) for v in box], "area": float(box[2] * box[3]), "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": [{"id": ORGANISM, "name": "organism"}]}


def coco_detections(boxes: Sequence[np.ndarray], scores: Sequence[np.ndarray],
                    image_ids: Sequence[int] | None = None) -> list[dict]:
    """COCO results: a list of ``{image_id, category_id, bbox [x, y, w, h], score}`` (frames 1..n
    unless ``image_ids`` are given)."""
    ids = range(1, len(boxes) + 1) if image_ids is None else image_ids
    out = []
    for image_id, frame_boxes, frame_scores in zip(ids, boxes, scores, strict=True):
        for box, score in zip(np.asarray(frame_boxes).reshape(-1, 4), np.asarray(frame_scores).reshape(-1)):
            out.append({"image_id": int(image_id), "category_id": ORGANISM,
                        "bbox": [round(float(v), 2) for v in box], "score": round(float(score), 5)})
    return out


def box_metrics(truth: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]], boxes: Sequence[np.ndarray],
                scores: Sequence[np.ndarray]) -> BoxMetrics:
    """Evaluate detections (``boxes`` / ``scores`` per frame) against ``truth`` with pycocotools."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results = coco_detections(boxes, scores)
    n_truth = int(sum(len(np.asarray(t).reshape(-1, 4)) for t in truth))
    if not results or n_truth == 0:  # loadRes refuses an empty list; nothing found (or nothing to find) scores 0
        return BoxMetrics(len(truth), n_truth, len(results), 0.0, 0.0, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and summary
        gt = COCO()
        gt.dataset = coco_ground_truth(truth, sizes)
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    m = list(ev.params.maxDets).index(100)
    recall = ev.eval["recall"][0, 0, 0, m]  # [IoU 0.5, the one category, area all, maxDets 100]
    clean = lambda v: max(0.0, float(v))  # noqa: E731 - pycocotools writes -1 for "no ground truth"
    return BoxMetrics(len(truth), n_truth, len(results), round(clean(ev.stats[1]), 4), round(clean(ev.stats[0]), 4),
                      round(clean(recall), 4))
