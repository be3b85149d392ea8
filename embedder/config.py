"""A model folder's ``config.json`` as a value: what rebuilds and feeds a model, and its hash.

Needs no torch: the query path (``embedder.runtime``, the workspace's checks that a model
folder is the one its vectors were made with) reads configs where only onnxruntime is installed.
:mod:`embedder.model` re-exports every name here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.errors import ModelError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
FORMAT = "oceanid-embedder/1"
OUTPUTS = ("head", "pooled", "both")
GEOMETRIES = ("centre", "letterbox")

#: torchvision's / timm's ImageNet statistics (the ONE place they are written in oceanid)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    output: str = "head"  # head | pooled | both (see the module docstring); old folders: head
    geometry: str = "centre"  # centre (short side, centre square) | letterbox (whole crop, padded)
    feature_dim: int = 0  # the backbone's pooled width; 0 = unknown (folders saved before it)
    wise_alpha: float | None = None  # share of the fine-tuned weights after WiSE-FT (None: not averaged)
    class_names: tuple[str, ...] = ()
    training: dict[str, Any] = field(default_factory=dict)  # TrainConfig.to_dict()
    backbone_arch: dict[str, Any] = field(default_factory=dict)  # offline rebuild info
    weights_sha256: str | None = None  # of weights.safetensors; set by save_model
    format: str = FORMAT

    @property
    def vector_dim(self) -> int:
        """Width of the vectors the model outputs (what is indexed)."""
        if self.output == "head":
            return self.dim
        if not self.feature_dim:
            raise ModelError(f"model config with output {self.output!r} has no feature_dim")
        return self.feature_dim + (self.dim if self.output == "both" else 0)

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
        if kwargs.get("output", "head") not in OUTPUTS:
            raise ModelError(f"model config output {kwargs['output']!r}; valid: {', '.join(OUTPUTS)}")
        if kwargs.get("geometry", "centre") not in GEOMETRIES:
            raise ModelError(f"model config geometry {kwargs['geometry']!r}; valid: {', '.join(GEOMETRIES)}")
        for key in ("mean", "std", "class_names"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


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
