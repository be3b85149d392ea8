"""Encoding crops into vectors: files (with failures reported, never fatal) and
in-memory PIL images (uploads).

Pipeline per batch: DataLoader workers read + decode + resize/crop to uint8
(the model's own eval geometry), the main process normalises the whole batch on
the device and runs the forward pass; pinned memory and non-blocking copies on
CUDA. Without worker processes (the default on 2 cores, where a worker process
competes with the forward pass) a prefetch thread decodes the next batches while
torch runs the current one (PIL decoding and torch kernels release the GIL).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from embedder.device import amp_dtype, resolve_device
from embedder.model import EmbeddingModel
from embedder.transforms import eval_geometry, normalize_batch
from index.errors import BadImage, InvalidInput
from index.imaging import open_image, to_rgb

log = logging.getLogger(__name__)


def default_workers() -> int:
    """DataLoader workers for encoding: the cores beyond two, at most 4.

    The forward pass keeps two cores busy; on a 2-core CPU a decoding worker only
    competes with it (bench/embed_throughput.py: 0 workers >= 1 worker there)."""
    return max(0, min(4, (os.cpu_count() or 1) - 2))


@dataclass(frozen=True)
class EncodeResult:
    """Vectors for the paths that decoded, and a reason for each that did not."""

    vectors: np.ndarray  # (n_ok, d) float32, L2-normalised; row i belongs to paths[ok[i]]
    ok: list[int] = field(default_factory=list)  # indices into the input paths
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)


class _PathDataset(Dataset):
    def __init__(self, paths: Sequence[Path | str], transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, int, str | None]:
        pixels, reason = decode_crop(self.paths[i], self.transform)
        return pixels, i, reason


def decode_crop(
    path: Path | str, transform: Callable[[Image.Image], torch.Tensor]
) -> tuple[torch.Tensor | None, str | None]:
    """Open and transform one crop: (pixels, None), or (None, one-line reason) when it fails."""
    try:
        return transform(open_image(path)), None
    except BadImage as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad crop must not end the batch
        detail = str(exc).splitlines()[0] if str(exc) else ""
        return None, f"{Path(path).name}: {type(exc).__name__} {detail}".strip()


def _collate(batch: list[tuple[torch.Tensor | None, int, str | None]]):
    good = [(t, i) for t, i, _ in batch if t is not None]
    bad = [(i, r) for t, i, r in batch if t is None]
    tensor = torch.stack([t for t, _ in good]) if good else None
    return tensor, [i for _, i in good], bad


_DONE = object()


def prefetched(items: Iterable, depth: int = 2) -> Iterator:
    """Yield ``items`` in order, produced by a background thread up to ``depth`` ahead.

    An exception in the producer is raised here, at the item it failed on; a consumer that
    stops early (break, exception) stops the producer at its next item.
    """
    if depth < 1:
        yield from items
        return
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:  # False once the consumer has stopped
        while not stop.is_set():
            try:
                ahead.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put((_DONE, exc))

    thread = threading.Thread(target=produce, name="oceanid-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = ahead.get()
            if item is _DONE:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


@torch.inference_mode()
def _forward(model: EmbeddingModel, images: torch.Tensor, device: torch.device) -> np.ndarray:
    """``images: (n, 3, S, S) uint8`` -> ``(n, dim) float32`` unit vectors."""
    images = normalize_batch(model.config, images.to(device, non_blocking=True))
    dtype = amp_dtype(device)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        out = model(images)
    return out.float().cpu().numpy()


forward_batch = _forward  # the public name other runners (embedder/ray_runner.py) call


def encode_paths(
    model: EmbeddingModel,
    paths: Sequence[Path | str],
    *,
    batch_size: int = 64,
    workers: int | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    prefetch: int = 2,
) -> EncodeResult:
    """Embed crop files with the model's eval transform.

    With ``workers=0`` a thread decodes up to ``prefetch`` batches ahead of the forward
    pass (0: decode in series); the vectors are the same either way.

    Unreadable or corrupt files are skipped and listed in ``failed``; they never
    stop the run. The model is moved to ``device`` and left in eval mode.

    Returns:
        EncodeResult with ``vectors: (n_ok, dim) float32`` L2-normalised rows in
        the order of ``ok``.

    Raises:
        ModelError: device ``cuda`` without CUDA.
        InvalidInput: ``batch_size < 1``.
    """
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    model.to(dev).eval()
    workers = default_workers() if workers is None else workers
    loader = DataLoader(
        _PathDataset(paths, eval_geometry(model.config)),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=dev.type == "cuda",
    )
    chunks, ok, failed = [], [], []
    bar = tqdm(total=len(paths), desc="embed", unit="crop", disable=not progress, leave=False)
    for tensor, idx, bad in prefetched(loader, prefetch if workers == 0 else 0):
        if tensor is not None:
            chunks.append(_forward(model, tensor, dev))
            ok.extend(idx)
        failed.extend((str(paths[i]), reason) for i, reason in bad)
        bar.update(len(idx) + len(bad))
    bar.close()
    for _path, reason in failed:
        log.warning("skipped %s", reason)
    log.debug("embedded %d crops, %d failed", len(ok), len(failed))
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, model.config.vector_dim), np.float32)
    return EncodeResult(np.ascontiguousarray(vectors, dtype=np.float32), ok, failed)


def encode_images(
    model: EmbeddingModel,
    images: Sequence[Image.Image],
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
) -> np.ndarray:
    """Embed in-memory PIL images (any mode; converted to RGB).

    Returns:
        ``(n, dim) float32`` L2-normalised, row i for ``images[i]``.

    Raises:
        ModelError: device ``cuda`` without CUDA.
    """
    dev = resolve_device(device)
    model.to(dev).eval()
    transform = eval_geometry(model.config)
    out = [np.zeros((0, model.config.vector_dim), np.float32)]
    for start in range(0, len(images), batch_size):
        batch = [transform(to_rgb(im)) for im in images[start : start + batch_size]]
        out.append(_forward(model, torch.stack(batch), dev))
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)
