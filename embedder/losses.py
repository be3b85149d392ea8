"""Metric-learning losses by name: a closed set, so a plain dict of builders.

Every built loss is an ``nn.Module`` called as ``loss(embeddings, labels)``
with ``embeddings: (n, d) float32`` (L2-normalised) and ``labels: (n,) int64``;
some hold parameters (class weights) that the optimiser must train too.

- ``softmax``: torch's CrossEntropyLoss with label smoothing 0.1 on a linear
  classifier over the embedding (pml has no plain softmax loss);
- ``arcface``: pml ArcFaceLoss, scale 30, margin 0.35 rad;
- ``subcenter-arcface``: pml SubCenterArcFaceLoss, K=3 sub-centres, same s and m;
- ``triplet``: pml TripletMarginLoss (margin 0.2) on semi-hard triplets mined by
  TripletMarginMiner(type_of_triplets="semihard");
- ``quadruplet``: ours, :class:`embedder.quadruplet.QuadrupletLoss`.

pml's ArcFace margins are in degrees; ``math.degrees`` converts.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from pytorch_metric_learning import losses, miners
from torch import nn

from embedder.quadruplet import QuadrupletLoss
from index.errors import ModelError

ARCFACE_SCALE = 30.0
ARCFACE_MARGIN_RAD = 0.35
TRIPLET_MARGIN = 0.2


class SoftmaxLoss(nn.Module):
    """Linear classifier + cross-entropy with label smoothing."""

    def __init__(self, num_classes: int, embedding_size: int, label_smoothing: float = 0.1) -> None:
        super().__init__()
        self.classifier = nn.Linear(embedding_size, num_classes)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.criterion(self.classifier(embeddings), labels)


class MinedLoss(nn.Module):
    """A pml pair/triplet loss fed by a pml miner."""

    def __init__(self, loss: nn.Module, miner: nn.Module) -> None:
        super().__init__()
        self.loss = loss
        self.miner = miner

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(embeddings, labels, self.miner(embeddings, labels))


def _arcface(num_classes: int, dim: int) -> nn.Module:
    return losses.ArcFaceLoss(num_classes, dim, margin=math.degrees(ARCFACE_MARGIN_RAD), scale=ARCFACE_SCALE)


def _subcenter(num_classes: int, dim: int) -> nn.Module:
    return losses.SubCenterArcFaceLoss(
        num_classes=num_classes,
        embedding_size=dim,
        margin=math.degrees(ARCFACE_MARGIN_RAD),
        scale=ARCFACE_SCALE,
        sub_centers=3,
    )


def _triplet(num_classes: int, dim: int) -> nn.Module:
    return MinedLoss(
        losses.TripletMarginLoss(margin=TRIPLET_MARGIN),
        miners.TripletMarginMiner(margin=TRIPLET_MARGIN, type_of_triplets="semihard"),
    )


LOSSES: dict[str, Callable[[int, int], nn.Module]] = {
    "softmax": lambda num_classes, dim: SoftmaxLoss(num_classes, dim),
    "arcface": _arcface,
    "subcenter-arcface": _subcenter,
    "triplet": _triplet,
    "quadruplet": lambda num_classes, dim: QuadrupletLoss(),
}


def build_loss(name: str, num_classes: int, dim: int) -> nn.Module:
    """The loss ``name`` for ``num_classes`` classes and ``dim``-d embeddings.

    Raises:
        ModelError: unknown name (the message lists the valid ones).
    """
    if name not in LOSSES:
        raise ModelError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
    return LOSSES[name](num_classes, dim)
