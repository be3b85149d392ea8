"""torchvision ResNets: ``resnet18``, ``resnet50``, ``resnext101_32x8d``.

``weights="imagenet"`` uses torchvision's weights API (downloads once into
torch's cache); a file is a torchvision ``state_dict`` (its ``fc.`` is dropped).
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from embedder.backbones._registry import Backbone, BackboneFactory, register_backbone
from embedder.backbones.weights import load_into

log = logging.getLogger(__name__)


def _torchvision(name: str, feature_dim: int) -> BackboneFactory:
    def factory(weights: str, image_size: int, arch: dict[str, Any] | None) -> Backbone:
        import torchvision

        if weights == "imagenet":  # real code path; never taken in tests (needs a download)
            tv_weights = torchvision.models.get_model_weights(name).DEFAULT
            log.info("loading torchvision %s weights %s", name, tv_weights)
            module = torchvision.models.get_model(name, weights=tv_weights)
        else:
            module = torchvision.models.get_model(name, weights=None)
        module.fc = nn.Identity()
        if weights not in ("none", "imagenet"):
            load_into(module, weights, ignore=("fc.",))
        return Backbone(module, feature_dim, last_stage=("layer4.",))

    return factory


register_backbone("resnet18")(_torchvision("resnet18", 512))
register_backbone("resnet50")(_torchvision("resnet50", 2048))
register_backbone("resnext101_32x8d")(_torchvision("resnext101_32x8d", 2048))
