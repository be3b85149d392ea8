"""YOLOX's input and output, in numpy: letterboxed BGR input, grid decoding, class-agnostic scores, NMS.

YOLOX (Megvii, ``ValTransform(legacy=False)`` and ``demo_utils.demo_postprocess``): a frame is
resized to fit a ``size`` x ``size`` square keeping its aspect, placed at the top left on grey
114, channels BGR, values 0-255, no normalisation. The network answers one row per grid cell of
the stride-8, 16 and 32 maps (416 px: 52^2 + 26^2 + 13^2 = 3,549 rows), each
``[dx, dy, log w, log h, objectness, class scores...]``: the box centre is ``(cell + d) * stride``
and its size ``exp(log w, log h) * stride``; objectness and class scores are probabilities.

As a class-agnostic proposer a row's score is ``objectness x max class score``.
No torch here: the ONNX runner (:mod:`embedder.detection.yolox_onnx`) needs only numpy.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

STRIDES = (8, 16, 32)
PAD_VALUE = 114


def letterbox(image: Image.Image, size: int) -> tuple[np.ndarray, float]:
    """An RGB frame -> ((3, size, size) float32 BGR 0-255, scale); frame pixel = input pixel / scale."""
    scale = min(size / image.width, size / image.height)
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    resized = (
        image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR) if (w, h) != image.size else image.convert("RGB")
    )
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.float32)
    canvas[:h, :w] = np.asarray(resized, dtype=np.float32)
    return np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1)), scale


def grids(height: int, width: int, strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """The cells of every stride's map, row-major per level: ((n, 2) float32 x, y cell index, (n,) stride)."""
    cells, steps = [], []
    for stride in strides:
        ys, xs = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        steps.append(np.full(xs.size, stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(steps).astype(np.float32)


def decode(raw: np.ndarray, height: int, width: int, strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """Rows ``(n, 5 + k)`` of one image -> boxes ``(n, 4)`` float32 x1, y1, x2, y2 input pixels.

    Raises ValueError when ``n`` does not match the grid of a ``height`` x ``width`` input."""
    cells, steps = grids(height, width, strides)
    if raw.ndim != 2 or raw.shape[0] != len(cells) or raw.shape[1] < 6:
        raise ValueError(f"YOLOX output {raw.shape} does not fit a {width}x{height} input ({len(cells)} rows)")
    centre = (raw[:, :2] + cells) * steps[:, None]
    half = np.exp(np.clip(raw[:, 2:4], -20.0, 20.0)) * steps[:, None] / 2
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, best first. ``boxes`` (n, 4) x1, y1, x2, y2."""
    order = np.argsort(-scores, kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        x1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        union = area[i] + area[rest] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def proposals(
    raw: np.ndarray,
    height: int,
    width: int,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    max_detections: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class-agnostic boxes of one image's rows ``(n, 5 + k)`` (probabilities, as the ONNX model answers).

    Returns ``(boxes (m, 4) float32 x1, y1, x2, y2 input pixels, scores (m,) float32 descending,
    labels (m,) int64 = the best class)``, score = objectness x max class score >= ``score_thresh``,
    after NMS over all classes together, at most ``max_detections``."""
    boxes = decode(raw, height, width)
    cls = raw[:, 5:]
    scores = raw[:, 4] * cls.max(axis=1)
    labels = cls.argmax(axis=1)
    keep = np.flatnonzero(scores >= score_thresh)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    kept = nms(boxes, scores, nms_thresh)[:max_detections]
    return boxes[kept], scores[kept].astype(np.float32), labels[kept].astype(np.int64)


def to_frame(boxes: np.ndarray, scale: float, width: int, height: int) -> np.ndarray:
    """Input-pixel x1, y1, x2, y2 -> (n, 4) float32 x, y, w, h pixels of the frame (clipped to it)."""
    xyxy = boxes.astype(np.float64) / scale
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, height)
    return (
        np.stack([xyxy[:, 0], xyxy[:, 1], xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], axis=1)
        .astype(np.float32)
        .reshape(-1, 4)
    )
