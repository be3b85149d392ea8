"""Embedding model: backbone + linear projection head -> L2-normalised vectors.

What a model outputs (``ModelConfig.output``) is one of:

- ``head``: the trained projection head (``dim`` wide), tuned for the trained species;
- ``pooled``: the backbone's pooled features (``feature_dim`` wide, head dropped);
- ``both``: the two, each L2-normalised and scaled by sqrt(1/2), so the cosine of two
  vectors is the mean of the two cosines (one index, one vector space).

Which is shipped, and why, is measured by bench/leave_species_out.py (bench/RESULTS.md).

A saved model is a self-describing folder, like open_clip's local model folders::

    config.json          backbone, weights origin, dim, image size, mean/std,
                         freeze mode, class names, training config, sha256 of weights
    weights.safetensors  every tensor of the model (never a pickle)

Nobody re-types the normalisation constants: transforms read them from here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_model as load_safetensors_model
from safetensors.torch import save_model as save_safetensors_model
from torch import nn

from embedder.backbones import Backbone, apply_freeze, create_backbone
from embedder.config import (
    CONFIG_FILE,
    FORMAT,
    GEOMETRIES,
    OUTPUTS,
    WEIGHTS_FILE,
    ModelConfig,
    read_config,
)
from embedder.config import canonical_json as canonical_json  # re-exported: the model folder's hash lives here too
from embedder.config import config_hash as config_hash
from index.errors import ModelError

log = logging.getLogger(__name__)


class EmbeddingModel(nn.Module):
    """``(n, 3, S, S)`` float32 normalised images -> ``(n, dim)`` float32 unit vectors."""

    def __init__(self, config: ModelConfig, backbone: Backbone | None = None) -> None:
        super().__init__()
        if backbone is None:
            backbone = create_backbone(config.backbone, "none", config.image_size, config.backbone_arch or None)
        if not config.feature_dim:  # a folder saved before feature_dim was recorded
            config = dataclasses.replace(config, feature_dim=int(backbone.feature_dim))
        self.config = config
        self.backbone = backbone.module
        self.head = nn.Linear(backbone.feature_dim, config.dim)
        apply_freeze(backbone, config.freeze)

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pooled backbone features, head output)``, neither normalised."""
        pooled = self.backbone(images)
        return pooled, self.head(pooled)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Unit vectors of ``config.output`` (training always uses :meth:`embed_head`)."""
        pooled, head = self.features(images)
        return combine(pooled, head, self.config.output)

    def embed_head(self, images: torch.Tensor) -> torch.Tensor:
        """The head's unit vectors: what the metric loss trains."""
        return F.normalize(self.head(self.backbone(images)).float(), dim=1)

    def train(self, mode: bool = True) -> EmbeddingModel:
        """Like ``nn.Module.train``, but batch-norm layers whose parameters are
        frozen stay in eval mode (their running statistics do not drift)."""
        super().train(mode)
        if mode:
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    params = list(module.parameters())
                    if params and not any(p.requires_grad for p in params):
                        module.eval()
        return self


def combine(pooled: torch.Tensor, head: torch.Tensor, output: str) -> torch.Tensor:
    """The unit vectors of ``output`` (head | pooled | both) from the two feature sets."""
    if output == "head":
        return F.normalize(head.float(), dim=1)
    if output == "pooled":
        return F.normalize(pooled.float(), dim=1)
    if output == "both":
        half = 0.5**0.5
        return torch.cat([F.normalize(pooled.float(), dim=1), F.normalize(head.float(), dim=1)], 1) * half
    raise ModelError(f"unknown output {output!r}; valid: {', '.join(OUTPUTS)}")


def build_model(
    backbone: str,
    *,
    weights: str = "none",
    dim: int = 128,
    image_size: int = 64,
    freeze: str = "none",
    output: str = "head",
    geometry: str = "centre",
    class_names: tuple[str, ...] = (),
    training: dict[str, Any] | None = None,
) -> EmbeddingModel:
    """Create a fresh model; the backbone gets ``weights`` (``none|imagenet|PATH``).

    Raises:
        ModelError: unknown backbone / freeze mode, weights that do not load, dim < 1.
    """
    if dim < 1:
        raise ModelError(f"embedding dim must be >= 1, got {dim}")
    if output not in OUTPUTS or geometry not in GEOMETRIES:
        raise ModelError(f"output must be one of {', '.join(OUTPUTS)} and geometry one of {', '.join(GEOMETRIES)}")
    spec = create_backbone(backbone, weights, image_size)
    config = ModelConfig(
        backbone=backbone,
        weights=str(weights),
        dim=dim,
        image_size=spec.image_size or image_size,
        mean=tuple(spec.mean),
        std=tuple(spec.std),
        freeze=freeze,
        output=output,
        geometry=geometry,
        feature_dim=int(spec.feature_dim),
        class_names=tuple(class_names),
        training=dict(training or {}),
        backbone_arch=dict(spec.arch),
    )
    return EmbeddingModel(config, spec)


def _sha256_file(path: Path) -> str:
    """sha256 hex of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def save_model(model: EmbeddingModel, folder: Path | str) -> ModelConfig:
    """Write ``config.json`` + ``weights.safetensors`` into ``folder`` (created).

    The weights' sha256 goes into the config, so :func:`config_hash` changes when
    the weights do. Updates and returns ``model.config``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_safetensors_model(model, str(tmp), metadata={"format": FORMAT})
    os.replace(tmp, folder / WEIGHTS_FILE)
    config = dataclasses.replace(model.config, weights_sha256=_sha256_file(folder / WEIGHTS_FILE))
    _write_json_atomic(folder / CONFIG_FILE, config.to_dict())
    model.config = config
    log.debug("saved model %s (%s, %s, dim %d)", folder, config.backbone, config.output, config.vector_dim)
    return config


def load_model(folder: Path | str) -> EmbeddingModel:
    """Rebuild a saved model on the CPU, in eval mode. Never unpickles.

    Raises:
        ModelError: missing/invalid config or weights, a weights file whose sha256
            differs from the config, or tensors that do not fit the architecture.
    """
    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{folder} has no {WEIGHTS_FILE}")
    if config.weights_sha256 and _sha256_file(weights) != config.weights_sha256:
        raise ModelError(f"{weights}: sha256 differs from config.json (file changed or corrupt)")
    model = EmbeddingModel(config)
    try:
        missing, unexpected = load_safetensors_model(model, str(weights), strict=False)
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types
        raise ModelError(f"{weights}: cannot load ({str(exc).splitlines()[0]})") from None
    if missing or unexpected:
        raise ModelError(
            f"{weights} does not fit {config.backbone}: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    return model.eval()
