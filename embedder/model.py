"""Embedding model: backbone + linear projection head -> L2-normalised vectors.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_model as load_safetensors_model
from safetensors.torch import save_model as save_safetensors_model
from torch import nn

from embedder.backbones import IMAGENET_MEAN, IMAGENET_STD, Backbone, apply_freeze, create_backbone
from index.errors import ModelError

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
FORMAT = "oceanid-embedder/1"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild and feed a model; saved as ``config.json``."""

    backbone: str
    weights: str = "none"  # where the backbone's initial weights came from (a record)
    dim: int = 128
    image_size: int = 64  # square input side, pixels
    mean: tuple[float, ...] = IMAGENET_MEAN  # the backbone's own, set by build_model
    std: tuple[float, ...] = IMAGENET_STD
    freeze: str = "none"
    class_names: tuple[str, ...] = ()
    training: dict[str, Any] = field(default_factory=dict)  # TrainConfig.to_dict()
    backbone_arch: dict[str, Any] = field(default_factory=dict)  # offline rebuild info
    weights_sha256: str | None = None  # of weights.safetensors; set by save_model
    format: str = FORMAT

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`. Raises ModelError on unknown or missing keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ModelError(f"model config has unknown keys: {sorted(unknown)}")
        if "backbone" not in data:
            raise ModelError("model config has no 'backbone'")
        kwargs = dict(data)
        for key in ("mean", "std", "class_names"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


class EmbeddingModel(nn.Module):
    """``(n, 3, S, S)`` float32 normalised images -> ``(n, dim)`` float32 unit vectors."""

    def __init__(self, config: ModelConfig, backbone: Backbone | None = None) -> None:
        super().__init__()
        if backbone is None:
            backbone = create_backbone(
                config.backbone, "none", config.image_size, config.backbone_arch or None
            )
        self.config = config
        self.backbone = backbone.module
        self.head = nn.Linear(backbone.feature_dim, config.dim)
        apply_freeze(backbone, config.freeze)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
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


def build_model(
    backbone: str,
    *,
    weights: str = "none",
    dim: int = 128,
    image_size: int = 64,
    freeze: str = "none",
    class_names: tuple[str, ...] = (),
    training: dict[str, Any] | None = None,
) -> EmbeddingModel:
    """Create a fresh model; the backbone gets ``weights`` (``none|imagenet|PATH``).

    Raises:
        ModelError: unknown backbone / freeze mode, weights that do not load, dim < 1.
    """
    if dim < 1:
        raise ModelError(f"embedding dim must be >= 1, got {dim}")
    spec = create_backbone(backbone, weights, image_size)
    config = ModelConfig(
        backbone=backbone,
        weights=str(weights),
        dim=dim,
        image_size=spec.image_size or image_size,
        mean=tuple(spec.mean),
        std=tuple(spec.std),
        freeze=freeze,
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
    log.debug("saved model %s (%s, dim %d)", folder, config.backbone, config.dim)
    return config


def read_config(folder: Path | str) -> ModelConfig:
    """Read ``folder/config.json``. Raises ModelError if missing or invalid."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"{folder} is not a model folder: no {CONFIG_FILE}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable config ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: config is not a JSON object")
    return ModelConfig.from_dict(data)


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
        raise ModelError(f"{weights} does not fit {config.backbone}: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    return model.eval()


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace, ASCII: the form :func:`config_hash` digests."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_hash(folder_or_config: Path | str | ModelConfig | dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a model config (folder, object or dict).

    Stable across processes and key order; includes ``weights_sha256``, so a
    retrained model with an identical config still hashes differently.

    Raises:
        ModelError: a folder without a readable config.
    """
    if isinstance(folder_or_config, (str, Path)):
        data = read_config(folder_or_config).to_dict()
    elif isinstance(folder_or_config, ModelConfig):
        data = folder_or_config.to_dict()
    else:
        data = json.loads(json.dumps(folder_or_config))
    return hashlib.sha256(canonical_json(data).encode("ascii")).hexdigest()
