"""YOLOX-Nano's COCO objectness as a zero-shot, class-agnostic proposer on onnxruntime (no torch).

The ONNX file (:func:`embedder.detection.yolox_weights.yolox_nano_onnx`) takes one letterboxed
416 x 416 BGR frame; each row's score is objectness x max COCO class probability
(:mod:`embedder.detection.yolox_decode`). COCO has no fish, so what this measures is how much
"an object is here" transfers to marine organisms without any training: the floor the
fine-tuned detector must beat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from embedder.detection.yolox_decode import letterbox, proposals, to_frame
from index.errors import ModelError


class YoloxOnnx:
    """An onnxruntime session of a YOLOX ONNX file: ``detect(frame)`` -> class-agnostic boxes."""

    def __init__(
        self,
        path: Path | str,
        threads: int | None = None,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        max_detections: int = 100,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError("the YOLOX proposer needs onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - unreadable or foreign file: one line
            raise ModelError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0][:120]})") from None
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 4 or not isinstance(shape[2], int) or shape[2] != shape[3]:
            raise ModelError(f"{path}: expected a fixed square YOLOX input, got {shape}")
        self.input_name = self.session.get_inputs()[0].name
        self.size = int(shape[2])
        self.score_thresh, self.nms_thresh, self.max_detections = score_thresh, nms_thresh, max_detections

    def raw(self, image: Image.Image) -> tuple[np.ndarray, float]:
        """The network's rows for one RGB frame: ((n, 85) float32, letterbox scale)."""
        x, scale = letterbox(image, self.size)
        return self.session.run(None, {self.input_name: x[None]})[0][0], scale

    def detect(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        """Boxes of one RGB frame: ((m, 4) float32 x, y, w, h frame pixels, (m,) float32 scores, descending)."""
        rows, scale = self.raw(image)
        boxes, scores, _ = proposals(
            rows, self.size, self.size, self.score_thresh, self.nms_thresh, self.max_detections
        )
        return to_frame(boxes, scale, image.width, image.height), scores
