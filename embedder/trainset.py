"""Training data: label indexing, the crop dataset, and per-epoch validation by
nearest prototype (prototypes from training crops, queries from validation crops)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from embedder.encoding import encode_paths
from embedder.model import EmbeddingModel
from embedder.transforms import Transform
from embedder.validation import prototype_metrics
from index.errors import InvalidInput
from index.imaging import open_image

log = logging.getLogger(__name__)

#: Training crops per class whose mean is the class prototype during validation
#: (a mean is stable long before all crops are used; keeps validation cheap).
PROTOTYPE_CROPS = 64


@dataclass(frozen=True)
class TrainData:
    """Training and validation crops with integer labels (index into ``classes``)."""

    classes: list[str]  # sorted class names
    train_paths: list[Path]
    train_labels: np.ndarray  # (n,) int64
    val_paths: list[Path]
    val_labels: np.ndarray  # (m,) int64
    ref_paths: list[Path]  # the training crops whose means are the validation prototypes
    ref_labels: np.ndarray


def _spread(indices: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` of ``indices``, evenly spaced (deterministic)."""
    if len(indices) <= n:
        return indices
    return indices[np.linspace(0, len(indices) - 1, n).round().astype(int)]


def prepare(train_items: Sequence[tuple[Path, str]], val_items: Sequence[tuple[Path, str]]) -> TrainData:
    """Index the labels; validation crops of classes absent from training are dropped.

    Raises:
        InvalidInput: fewer than 2 training classes, or no usable validation crop.
    """
    classes = sorted({str(label) for _, label in train_items})
    if len(classes) < 2:
        raise InvalidInput(f"training needs at least 2 classes, got {len(classes)}")
    index = {name: i for i, name in enumerate(classes)}
    val = [(Path(p), index[str(lab)]) for p, lab in val_items if str(lab) in index]
    if len(val) < len(val_items):
        log.warning("%d validation crops have classes absent from training; ignored", len(val_items) - len(val))
    if not val:
        raise InvalidInput("no validation crops belong to a training class")
    labels = np.array([index[str(lab)] for _, lab in train_items], dtype=np.int64)
    paths = [Path(p) for p, _ in train_items]
    ref = np.concatenate([_spread(np.flatnonzero(labels == c), PROTOTYPE_CROPS) for c in range(len(classes))])
    return TrainData(
        classes,
        paths,
        labels,
        [p for p, _ in val],
        np.array([lab for _, lab in val], np.int64),
        [paths[i] for i in ref],
        labels[ref],
    )


class CropDataset(Dataset):
    """``(transformed crop (3, S, S) float32, label int)``; a bad file raises BadImage."""

    def __init__(self, paths: list[Path], labels: np.ndarray, transform: Transform) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(open_image(self.paths[i])), int(self.labels[i])


def validate(model: EmbeddingModel, data: TrainData, device: torch.device, workers: int) -> dict[str, float]:
    """Nearest-prototype top-1 / top-5 / F1-macro of the validation crops.

    Raises:
        InvalidInput: a crop could not be read.
    """
    ref = encode_paths(model, data.ref_paths, batch_size=128, workers=workers, device=device, progress=False)
    query = encode_paths(model, data.val_paths, batch_size=128, workers=workers, device=device, progress=False)
    if ref.failed or query.failed:
        raise InvalidInput(f"unreadable crops: {(ref.failed + query.failed)[:3]}")
    return prototype_metrics(ref.vectors, data.ref_labels, query.vectors, data.val_labels, len(data.classes))
