"""Export a trained encoder to ONNX, beside its safetensors, and check it against torch.

What is exported is exactly what a query runs: :meth:`embedder.model.EmbeddingModel.forward`
(backbone, head, :func:`embedder.model.combine`: the L2-normalised vectors of
``config.output``), float32, input ``images: (n, 3, S, S)`` normalised with the model's
mean/std, the batch axis dynamic. The preprocessing, the weights' sha256 and the check go
into ``encoder.json`` (:mod:`embedder.runtime` reads both; it needs no torch).

The check: a fixed batch of real crops goes through torch (training's eval transform) and
through onnxruntime (:func:`embedder.runtime.preprocess`, Pillow + numpy); the largest
``1 - cos`` over the batch is recorded, and an export above
:data:`embedder.runtime.MAX_COSINE_GAP` is recorded as failed (the query path then stays on
torch and says so once).
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedder.model import EmbeddingModel, load_model
from embedder.runtime import (
    EXPORT_FILE,
    EXPORT_FORMAT,
    INPUT_NAME,
    MAX_COSINE_GAP,
    ONNX_FILE,
    ONNX_INT8_FILE,
    OUTPUT_NAME,
    OnnxEncoder,
    Preprocessing,
    sha256_file,
)
from index.errors import BadImage, ModelError
from index.imaging import open_image

log = logging.getLogger(__name__)

OPSET = 17
CHECK_CROPS = 32  # crops in the export check batch (the first ones given, in order)


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how close it came to torch."""

    model_id: str
    onnx_file: str
    onnx_bytes: int
    check_crops: int  # crops in the check batch (0: random pixels, no crops given)
    max_cosine_gap: float  # max over the batch of 1 - cos(torch vector, onnxruntime vector)
    passed: bool
    seconds: float
    int8_file: str | None = None
    int8_max_cosine_gap: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "onnx_file": self.onnx_file,
            "onnx_bytes": self.onnx_bytes,
            "check_crops": self.check_crops,
            "max_cosine_gap": self.max_cosine_gap,
            "passed": self.passed,
            "seconds": round(self.seconds, 2),
            "int8_file": self.int8_file,
            "int8_max_cosine_gap": self.int8_max_cosine_gap,
        }


def _check_images(crops: Sequence[Path | str], size: int, limit: int = CHECK_CROPS):
    """The first ``limit`` crops that decode; without any, a seeded batch of random images."""
    from PIL import Image

    images = []
    for path in crops:
        try:
            images.append(open_image(path))
        except BadImage:
            continue
        if len(images) == limit:
            break
    if images:
        return images, len(images)
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size + 7, size + 3, 3), dtype=np.uint8)) for _ in range(8)], 0


def _torch_vectors(model: EmbeddingModel, images) -> np.ndarray:
    from embedder.encoding import encode_images

    return encode_images(model, images, device="cpu")


def _max_gap(a: np.ndarray, b: np.ndarray) -> float:
    cos = np.sum(a.astype(np.float64) * b.astype(np.float64), axis=1)
    return float(np.max(1.0 - cos)) if len(cos) else 0.0


def _write_onnx(model: EmbeddingModel, path: Path) -> None:
    size = model.config.image_size
    example = torch.zeros(2, 3, size, size, dtype=torch.float32)
    tmp = path.with_name(path.name + ".tmp")
    model = model.cpu().eval()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter: one static graph, measured exact (max cosine gap ~1e-7); torch
        # deprecates it in favour of the dynamo exporter, which needs onnxscript and is not needed here
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    os.replace(tmp, path)


def quantize_int8(folder: Path) -> Path:
    """Write ``encoder.int8.onnx``: onnxruntime's dynamic INT8 quantisation of ``encoder.onnx``
    (weights int8, activations quantised per batch). Returns its path."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, out = folder / ONNX_FILE, folder / ONNX_INT8_FILE
    tmp = out.with_name(out.name + ".tmp")
    quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8)
    os.replace(tmp, out)
    return out


def export_model(
    folder: Path | str, crops: Sequence[Path | str] = (), int8: bool = False, model: EmbeddingModel | None = None
) -> ExportResult:
    """Export the model in ``folder`` to ``folder/encoder.onnx`` and record ``encoder.json``.

    ``crops``: real crops for the check batch (the first :data:`CHECK_CROPS` that decode);
    ``int8``: also write and check the dynamically quantised copy (an option: the FP32 export
    is what queries use by default). ``model``: the loaded model, when the caller has it.

    Raises:
        ModelError: a folder without a loadable model, or an export torch refuses.
    """
    folder = Path(folder)
    start = time.perf_counter()
    model = load_model(folder) if model is None else model.cpu().eval()
    config = model.config
    for stale in (EXPORT_FILE, ONNX_INT8_FILE):  # never leave a record of older weights beside new ones
        (folder / stale).unlink(missing_ok=True)
    try:
        _write_onnx(model, folder / ONNX_FILE)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types
        raise ModelError(
            f"ONNX export of {folder.name} failed: {type(exc).__name__} "
            f"{str(exc).splitlines()[0] if str(exc) else ''}".strip()
        ) from None
    prep = Preprocessing(config.image_size, config.geometry, tuple(config.mean), tuple(config.std))
    record: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "onnx_file": ONNX_FILE,
        "onnx_sha256": sha256_file(folder / ONNX_FILE),
        "weights_sha256": config.weights_sha256,
        "vector_dim": config.vector_dim,
        "output": config.output,
        "preprocessing": prep.to_dict(),
        "input": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "opset": OPSET,
        "exporter": f"torch.onnx (TorchScript) {torch.__version__}",
        "int8_sha256": None,
        "check": {"passed": True},  # provisional, so the check's own encoder loads it
    }
    _write_record(folder, record)
    images, n_crops = _check_images(crops, config.image_size)
    reference = _torch_vectors(model, images)
    gap = _max_gap(reference, OnnxEncoder(folder, threads=1).embed(images))
    passed = bool(gap <= MAX_COSINE_GAP)
    record["check"] = {
        "passed": passed,
        "max_cosine_gap": gap,
        "crops": n_crops,
        "images": len(images),
        "limit": MAX_COSINE_GAP,
        "what": "max over the batch of 1 - cos(torch, onnxruntime), each from its own preprocessing",
    }
    int8_gap = None
    if int8 and passed:
        record["int8_sha256"] = sha256_file(quantize_int8(folder))
        _write_record(folder, record)
        int8_gap = _max_gap(reference, OnnxEncoder(folder, threads=1, int8=True).embed(images))
        record["check"]["int8_max_cosine_gap"] = int8_gap
    _write_record(folder, record)
    level = logging.INFO if passed else logging.WARNING
    log.log(
        level,
        "exported %s to ONNX: max cosine gap %.2e over %d images (%s)",
        folder.name,
        gap,
        len(images),
        "passed" if passed else "FAILED: queries stay on torch",
    )
    return ExportResult(
        folder.name,
        ONNX_FILE,
        (folder / ONNX_FILE).stat().st_size,
        n_crops,
        gap,
        passed,
        time.perf_counter() - start,
        ONNX_INT8_FILE if record["int8_sha256"] else None,
        int8_gap,
    )


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    tmp = folder / (EXPORT_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, folder / EXPORT_FILE)
