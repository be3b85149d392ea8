"""Tiled detection for small organisms in large frames: the whole frame plus overlapping tiles,
each run through the same detector, boxes shifted back and merged by one NMS.

A detector at 416 px sees a 1024 px frame at 0.4x, where a 20 px fish is 8 px; a 512 px tile
at 416 px sees it at 0.8x. Boxes cut by a tile's edge are the usual cost of slicing (SAHI,
Akyon et al. 2022); the whole-frame pass keeps the large organisms, NMS keeps one box of each.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from embedder.detection.yolox_decode import nms
from index.errors import InvalidInput

Detect = Callable[[Image.Image], tuple[np.ndarray, np.ndarray]]  # frame -> (n, 4) x, y, w, h px, (n,) scores


def tile_windows(width: int, height: int, tile: int, overlap: float = 0.25) -> list[tuple[int, int, int, int]]:
    """``(x0, y0, x1, y1)`` windows of side <= ``tile`` covering the frame, neighbours overlapping by
    at least ``overlap`` of a tile, the last one flush with the far edge. Raises InvalidInput."""
    if tile < 32 or not 0.0 <= overlap < 1.0:
        raise InvalidInput(f"tiles need a side >= 32 px and an overlap within [0, 1), got {tile}, {overlap:g}")

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        step = max(1, int(tile * (1 - overlap)))
        out = list(range(0, length - tile, step))
        return out + [length - tile]

    return [(x, y, min(width, x + tile), min(height, y + tile)) for y in starts(height) for x in starts(width)]


def tiled_detect(
    detect: Detect,
    image: Image.Image,
    tile: int,
    overlap: float = 0.25,
    nms_thresh: float = 0.5,
    max_detections: int = 100,
    whole_frame: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``detect`` on the whole frame (``whole_frame``) and on each tile; boxes in frame pixels, merged by
    NMS at ``nms_thresh``, best first, at most ``max_detections``: ((m, 4) float32 x, y, w, h, (m,) float32)."""
    boxes, scores = [], []
    windows = tile_windows(image.width, image.height, tile, overlap)
    if whole_frame and windows != [(0, 0, image.width, image.height)]:
        b, s = detect(image)
        boxes.append(b)
        scores.append(s)
    for x0, y0, x1, y1 in windows:
        b, s = detect(image.crop((x0, y0, x1, y1)))
        boxes.append(np.asarray(b, np.float32).reshape(-1, 4) + np.array([x0, y0, 0, 0], np.float32))
        scores.append(np.asarray(s, np.float32).reshape(-1))
    xywh = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    score = np.concatenate(scores) if scores else np.zeros(0, np.float32)
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    keep = nms(xyxy, score, nms_thresh)[:max_detections]
    return xywh[keep].astype(np.float32).reshape(-1, 4), score[keep].astype(np.float32)
