"""The query-time encoder on ONNX Runtime: PIL images -> unit vectors, with no torch.

A model folder that :mod:`embedder.export` exported holds, beside ``config.json`` and
``weights.safetensors``::

    encoder.onnx   the exact query-time network (backbone, head, ``combine``: unit vectors),
                   input ``images: (n, 3, S, S) float32`` normalised, dynamic batch axis
    encoder.json   what feeds it (image size, geometry, mean, std), the weights it was exported
                   from, its own sha256, and the export check (max cosine gap to torch)

Preprocessing here is Pillow + numpy and gives the pixels of training's eval transform
(:func:`embedder.transforms.eval_transform`; a test holds them equal). This module imports
numpy, Pillow and onnxruntime only (a test checks that identify never loads torch), and is
imported by the workspace only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from embedder.config import read_config
from index.errors import ModelError
from index.imaging import to_rgb

log = logging.getLogger(__name__)

ONNX_FILE = "encoder.onnx"
ONNX_INT8_FILE = "encoder.int8.onnx"
EXPORT_FILE = "encoder.json"
EXPORT_FORMAT = "oceanid-onnx/1"
INPUT_NAME = "images"
OUTPUT_NAME = "vectors"
MAX_COSINE_GAP = 1e-4  # the most 1 - cos(torch, onnx) an export may show on its check batch to be used
#: onnxruntime graph optimisation levels by name (bench/onnx_runtime.py measures them)
OPT_LEVELS = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class Preprocessing:
    """What turns a PIL image into the network's input; read from ``encoder.json``."""

    image_size: int  # square input side, pixels
    geometry: str  # centre | letterbox (embedder.transforms)
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "geometry": self.geometry,
            "mean": list(self.mean),
            "std": list(self.std),
            "layout": "NCHW float32 RGB, (x / 255 - mean) / std",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(
            int(data["image_size"]),
            str(data["geometry"]),
            tuple(map(float, data["mean"])),
            tuple(map(float, data["std"])),
        )


def centre_square(image: Image.Image, size: int) -> np.ndarray:
    """RGB PIL -> ``(S, S, 3)`` uint8: the shorter side resized to ``size`` (PIL bilinear,
    torchvision's rounding), then a centred square cut at torchvision's offsets."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    scaled = (size, int(size * long / short)) if short != size else (short, long)
    new_w, new_h = scaled if width <= height else scaled[::-1]
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.BILINEAR)
    if (new_w, new_h) != (size, size):
        top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
        image = image.crop((left, top, left + size, top + size))
    return _rgb_array(image)


def letterboxed(image: Image.Image, size: int) -> np.ndarray:
    """RGB PIL -> ``(S, S, 3)`` uint8: the whole image, its longer side resized to ``size``,
    centred on a black square."""
    width, height = image.size
    scale = size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.BILINEAR)
    if (new_w, new_h) != (size, size):
        canvas = Image.new(image.mode, (size, size))
        canvas.paste(image, ((size - new_w) // 2, (size - new_h) // 2))
        image = canvas
    return _rgb_array(image)


def _rgb_array(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


GEOMETRY = {"centre": centre_square, "letterbox": letterboxed}


def preprocess(images: Sequence[Image.Image], prep: Preprocessing) -> np.ndarray:
    """RGB PIL images -> ``(n, 3, S, S) float32``, normalised with ``prep``'s mean/std."""
    cut = GEOMETRY[prep.geometry]
    batch = np.stack([cut(to_rgb(im), prep.image_size) for im in images])
    mean = np.asarray(prep.mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(prep.std, dtype=np.float32).reshape(1, -1, 1, 1)
    pixels = batch.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray((pixels - mean) / std, dtype=np.float32)


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_export(folder: Path | str) -> dict[str, Any] | None:
    """``encoder.json`` of a model folder, or None when the model was never exported."""
    path = Path(folder) / EXPORT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise ModelError(f"{path}: not an {EXPORT_FORMAT} record")
    return data


def export_problem(folder: Path | str) -> str | None:
    """Why the folder's ONNX export cannot serve queries (one line), or None when it can.

    It must exist, pass its export check, and be exported from the weights the folder holds now."""
    folder = Path(folder)
    record = read_export(folder)
    if record is None:
        return f"model {folder.name} has no ONNX export (run `oceanid models export`)"
    if not record.get("check", {}).get("passed"):
        gap = record.get("check", {}).get("max_cosine_gap")
        return f"model {folder.name}'s ONNX export failed its check against torch (max cosine gap {gap})"
    if record.get("weights_sha256") != read_config(folder).weights_sha256:
        return f"model {folder.name}'s ONNX export is of other weights (run `oceanid models export`)"
    return None


def providers_for(device: str) -> list[str]:
    """onnxruntime execution providers for ``cpu | cuda``. Raises ModelError for cuda without
    onnxruntime-gpu (the caller decides whether torch takes over)."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ModelError("onnxruntime has no CUDA provider here (install onnxruntime-gpu)")


def cuda_provider() -> bool:
    """True when onnxruntime can run on CUDA (onnxruntime-gpu with a GPU)."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


class OnnxEncoder:
    """A model folder's ``encoder.onnx`` on onnxruntime: PIL images -> ``(n, d) float32`` unit vectors.

    ``threads``: onnxruntime's intra-op threads (default ``$OCEANID_THREADS``, else onnxruntime's
    own choice); ``optimization``: one of :data:`OPT_LEVELS`; ``int8``: the dynamically quantised
    copy (``encoder.int8.onnx``, made by ``oceanid models export --int8``). One session serves many
    threads (onnxruntime's ``run`` is thread-safe).

    Raises:
        ModelError: no usable export (:func:`export_problem`), or a file whose sha256 differs.
    """

    def __init__(
        self,
        folder: Path | str,
        device: str = "cpu",
        threads: int | None = None,
        optimization: str = "all",
        int8: bool = False,
    ) -> None:
        import onnxruntime as ort

        folder = Path(folder)
        problem = export_problem(folder)
        if problem:
            raise ModelError(problem)
        record = read_export(folder)
        assert record is not None
        name, key = (ONNX_INT8_FILE, "int8_sha256") if int8 else (ONNX_FILE, "onnx_sha256")
        path = folder / name
        if not path.is_file() or record.get(key) is None:
            raise ModelError(f"{folder.name} has no {name}" + (" (run `oceanid models export --int8`)" if int8 else ""))
        if sha256_file(path) != record[key]:
            raise ModelError(f"{path}: sha256 differs from {EXPORT_FILE} (file changed or corrupt)")
        if optimization not in OPT_LEVELS:
            raise ModelError(f"unknown optimisation level {optimization!r}; valid: {', '.join(OPT_LEVELS)}")
        options = ort.SessionOptions()
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[optimization]
        if threads is None and os.environ.get("OCEANID_THREADS", "").isdigit():
            threads = int(os.environ["OCEANID_THREADS"])
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.folder, self.device, self.int8 = folder, device, int8
        self.prep = Preprocessing.from_dict(record["preprocessing"])
        self.dim = int(record["vector_dim"])
        self.session = ort.InferenceSession(str(path), options, providers=providers_for(device))
        log.info("encoder %s on onnxruntime (%s%s)", folder.name, device, ", int8" if int8 else "")

    def embed_array(self, pixels: np.ndarray) -> np.ndarray:
        """``(n, 3, S, S) float32`` normalised -> ``(n, d) float32`` unit vectors."""
        if len(pixels) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = self.session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]
        return np.ascontiguousarray(out, dtype=np.float32)

    def embed(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        """PIL images (any mode) -> ``(n, d) float32`` L2-normalised, row i for ``images[i]``."""
        out = [np.zeros((0, self.dim), np.float32)]
        for start in range(0, len(images), batch_size):
            out.append(self.embed_array(preprocess(images[start : start + batch_size], self.prep)))
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)
