"""The general space's encoder: a frozen ImageNet backbone's pooled features (issue 26).

Every model has two vector spaces: the tuned one (the fine-tuned encoder) and a general one, kept
beside it so that species the encoder never trained on stay separable. The general encoder is an
ordinary model folder (config.json + weights.safetensors, ``output = "pooled"``, ``training`` marks it
``{"general": true}``) written once next to the tuned model's; it is never trained. Which backbone and
input size: :class:`GeneralConfig`, chosen by bench/two_spaces.py (bench/RESULTS.md).

:func:`encode_images_both` embeds decoded images with both encoders: one decode, each encoder's own
eval transform, one batched forward per encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from embedder.device import resolve_device
from embedder.encoding import forward_batch
from embedder.model import EmbeddingModel, ModelConfig, build_model, save_model
from embedder.transforms import eval_geometry
from index.imaging import to_rgb


@dataclass(frozen=True)
class GeneralConfig:
    """The frozen encoder of the general space."""

    backbone: str = "efficientnet_lite0"  # frozen ImageNet Lite0 (bench/two_spaces.py: Lite0 160 vs 128, Lite2)
    weights: str = "imagenet"
    image_size: int = 160  # fish4knowledge added-species ceiling 0.77 at 160 vs 0.69 at 96 px (bench/RESULTS.md)

    def to_dict(self) -> dict:
        return asdict(self)


def general_encoder(config: GeneralConfig = GeneralConfig()) -> EmbeddingModel:
    """The frozen encoder (eval mode): ``(n, 3, S, S)`` images -> ``(n, feature_dim)`` unit pooled features.

    Raises:
        ModelError: unknown backbone or weights that do not load.
    """
    model = build_model(
        config.backbone,
        weights=config.weights,
        image_size=config.image_size,
        output="pooled",
        training={"general": True, **config.to_dict()},
    )
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def write_general_model(folder: Path | str, config: GeneralConfig = GeneralConfig()) -> ModelConfig:
    """Write the general encoder as a model folder (its config hash is its space's identity)."""
    return save_model(general_encoder(config), folder)


def is_general(config: ModelConfig) -> bool:
    """Whether a model folder's config is a general-space encoder (written by :func:`write_general_model`)."""
    return bool(config.training.get("general"))


def encode_images_both(
    models: Sequence[EmbeddingModel],
    images: Sequence[Image.Image],
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
) -> list[np.ndarray]:
    """Embed decoded images with several encoders: each image converted to RGB once, each encoder's eval
    transform, one forward per encoder and batch.

    Returns:
        one ``(n, dim_m) float32`` L2-normalised array per model, row i for ``images[i]``.
    """
    dev = resolve_device(device)
    transforms = []
    for model in models:
        model.to(dev).eval()
        transforms.append(eval_geometry(model.config))
    out: list[list[np.ndarray]] = [[np.zeros((0, m.config.vector_dim), np.float32)] for m in models]
    for start in range(0, len(images), batch_size):
        rgb = [to_rgb(im) for im in images[start : start + batch_size]]
        for m, (model, transform) in enumerate(zip(models, transforms, strict=False)):
            out[m].append(forward_batch(model, torch.stack([transform(im) for im in rgb]), dev))
    return [np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32) for chunks in out]
