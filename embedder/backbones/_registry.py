"""The backbone registry: ``Backbone``, ``register_*``, ``create_backbone``, ``apply_freeze``.

Imports no family (as timm's ``_registry``): each family module registers its
names at import time and :mod:`embedder.backbones` imports the families, so
import order is never load-bearing and nothing here imports back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

#: torchvision's / timm's ImageNet statistics, written once in embedder.config (families with
#: other statistics take them from their own library).
from embedder.config import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402,F401
from index.errors import ModelError

FREEZE_MODES = ("none", "partial", "all")
#: what ``weights`` may be, for help texts and error messages
WEIGHTS_HELP = "'none' (random init), 'imagenet' (packaged or downloaded ImageNet weights) or a file path"


@dataclass
class Backbone:
    """A built feature extractor and what the model around it needs to know."""

    module: nn.Module  # (n, 3, H, W) float32 normalised -> (n, feature_dim)
    feature_dim: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # parameter-name prefixes (inside ``module``) that stay trainable with freeze="partial"
    last_stage: tuple[str, ...] = ()
    # native input size where the architecture fixes one (ViTs), else None
    image_size: int | None = None
    # JSON needed to rebuild the architecture offline (open_clip configs), else {}
    arch: dict[str, Any] = field(default_factory=dict)


#: factory(weights, image_size, arch) -> Backbone; ``arch`` is the saved
#: architecture JSON when rebuilding a saved model, else None.
BackboneFactory = Callable[[str, int, "dict[str, Any] | None"], Backbone]
_REGISTRY: dict[str, BackboneFactory] = {}
_PREFIXES: dict[str, Callable[[str, str, int, dict[str, Any] | None], Backbone]] = {}


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Decorator registering ``factory`` under ``name`` (import time only)."""

    def wrap(factory: BackboneFactory) -> BackboneFactory:
        _REGISTRY[name] = factory
        return factory

    return wrap


def register_prefix(prefix: str, factory: Callable[..., Backbone]) -> None:
    """Register a family of names ``"<prefix>:<rest>"``; ``factory(rest, weights, image_size, arch)``."""
    _PREFIXES[prefix] = factory


def available_backbones() -> list[str]:
    """Registered names; prefixed families are listed as ``"<prefix>:<name>"``."""
    return sorted(_REGISTRY) + [f"{p}:<name>" for p in sorted(_PREFIXES)]


def create_backbone(
    name: str, weights: str = "none", image_size: int = 224, arch: dict[str, Any] | None = None
) -> Backbone:
    """Build the backbone ``name`` with ``weights`` (see :data:`WEIGHTS_HELP`).

    Raises:
        ModelError: unknown name (the message lists the valid ones), weights not
            available for that backbone, or a weights file that does not fit.
    """
    if ":" in name:
        prefix, rest = name.split(":", 1)
        if prefix in _PREFIXES:
            return _PREFIXES[prefix](rest, weights, image_size, arch)
    if name not in _REGISTRY:
        raise ModelError(f"unknown backbone {name!r}; valid: {', '.join(available_backbones())}")
    return _REGISTRY[name](weights, image_size, arch)


def apply_freeze(backbone: Backbone, mode: str) -> None:
    """Set ``requires_grad`` on the backbone's parameters for a freeze mode.

    ``none``: everything trains; ``partial``: only ``backbone.last_stage`` trains;
    ``all``: nothing in the backbone trains (only the head around it).

    Raises:
        ModelError: unknown mode.
    """
    if mode not in FREEZE_MODES:
        raise ModelError(f"unknown freeze mode {mode!r}; valid: {', '.join(FREEZE_MODES)}")
    for pname, param in backbone.module.named_parameters():
        if mode == "none":
            param.requires_grad_(True)
        elif mode == "all":
            param.requires_grad_(False)
        else:
            param.requires_grad_(pname.startswith(backbone.last_stage))


def no_pretrained(name: str, weights: str) -> None:
    """Raise ModelError when ``weights`` asks ImageNet weights of a from-scratch backbone."""
    if weights == "imagenet":
        raise ModelError(f"backbone {name!r} has no ImageNet weights; use weights='none' or a file")
