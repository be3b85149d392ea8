"""The encoder a query runs: the model folder's ONNX export on onnxruntime, else torch.

Which one, decided per engine (:func:`query_encoder`):

- ``cpu``: onnxruntime when the folder has a usable export (:func:`embedder.runtime.export_problem`);
  otherwise torch, said once in one log line.
- ``cuda``: onnxruntime's CUDA provider (onnxruntime-gpu) when present, else torch on CUDA.
- ``auto``: ``cuda`` when onnxruntime has CUDA, or when this machine has an NVIDIA GPU and torch is
  installed to drive it (``embedder.device`` decides, and refuses none); else ``cpu``.

Only the torch branch imports torch: identify, search, species add and serve on the CPU load
numpy, Pillow and onnxruntime (tests/app/workspace/test_encoders.py runs identify and checks).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from index.errors import BadImage, InvalidInput, ModelError
from index.imaging import open_image

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


class QueryEncoder(Protocol):
    """PIL images -> ``(n, d) float32`` L2-normalised vectors."""

    runtime: str  # "onnxruntime" | "torch"

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...


class OrtEncoder:
    """:class:`embedder.runtime.OnnxEncoder` as a query encoder."""

    runtime = "onnxruntime"

    def __init__(self, folder: Path, device: str) -> None:
        from embedder.runtime import OnnxEncoder

        self.onnx = OnnxEncoder(folder, device=device)
        self.device = device

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.onnx.embed(list(images))


class TorchEncoder:
    """The torch model (``embedder.encoding``): the fallback, and CUDA without onnxruntime-gpu."""

    runtime = "torch"

    def __init__(self, folder: Path, device: str) -> None:
        from embedder.model import load_model

        self.model = load_model(folder)
        self.device = device

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        from embedder.encoding import encode_images

        return encode_images(self.model, list(images), device=self.device)


def _nvidia_gpu() -> bool:
    """An NVIDIA driver with at least one GPU, seen without importing torch."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def encoder_device(device: str) -> tuple[str, str]:
    """``auto | cpu | cuda`` -> (runtime, device): ("onnxruntime" | "torch", "cpu" | "cuda[:n]").

    Raises:
        InvalidInput: another device name.
        ModelError: ``cuda`` with neither onnxruntime-gpu nor torch's CUDA (from ``embedder.device``).
    """
    if device not in DEVICES and not device.startswith("cuda:"):
        raise InvalidInput(f"unknown device {device!r}; valid: {', '.join(DEVICES)}")
    if device == "cpu":
        return "onnxruntime", "cpu"
    from embedder.runtime import cuda_provider

    if cuda_provider():
        return "onnxruntime", "cuda"
    if device == "auto" and not (_nvidia_gpu() and importlib.util.find_spec("torch") is not None):
        return "onnxruntime", "cpu"
    from embedder.device import resolve_device

    chosen = str(resolve_device(device))  # raises ModelError for cuda without CUDA
    return ("torch", chosen) if chosen.startswith("cuda") else ("onnxruntime", "cpu")


def query_encoder(folder: Path, device: str) -> QueryEncoder:
    """The encoder for ``folder`` on ``device`` (an :func:`encoder_device` result's device).

    Raises:
        ModelError: neither a usable export nor torch to run the weights with.
    """
    from embedder.runtime import export_problem

    problem = export_problem(folder)
    if problem is None and (device == "cpu" or device == "cuda"):
        try:
            return OrtEncoder(folder, device)
        except ModelError as exc:
            problem = str(exc)
    if importlib.util.find_spec("torch") is None:
        raise ModelError(
            problem or f"no ONNX Runtime encoder for {folder.name} on {device}",
            hint="export it where the training stack is installed: `oceanid models export`",
        )
    if problem:
        log.warning("%s: queries run on torch", problem)
    return TorchEncoder(folder, device)


def embed_paths(
    encoder: QueryEncoder, paths: Sequence[Path | str], batch_size: int = 64
) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
    """Embed crop files: ``(vectors (n_ok, d) float32, ok indices, [(path, one-line reason)])``;
    a file that does not decode is listed, never fatal."""
    chunks, ok, failed = [], [], []
    for start in range(0, len(paths), batch_size):
        images, where = [], []
        for i in range(start, min(start + batch_size, len(paths))):
            try:
                images.append(open_image(paths[i]))
                where.append(i)
            except BadImage as exc:
                failed.append((str(paths[i]), str(exc)))
        if images:
            chunks.append(encoder.embed(images))
            ok.extend(where)
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    return np.ascontiguousarray(vectors, dtype=np.float32), ok, failed


def embed_in_batches(
    embed: Callable[[list[Image.Image]], np.ndarray], images: Sequence[Image.Image], batch_size: int = 64
) -> np.ndarray:
    """Images already in memory -> ``embed``'s ``(n, d) float32`` vectors, ``batch_size`` per call (the
    batches :func:`embed_paths` would make of their files, so the vectors are the same)."""
    if not images:
        return np.zeros((0, 0), np.float32)
    chunks = [embed(list(images[s : s + batch_size])) for s in range(0, len(images), batch_size)]
    return np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
