"""The class-agnostic organism detector: a torchvision one-stage detector on a timm backbone.

A timm backbone built with ``features_only`` (strides 8, 16, 32) feeds torchvision's
:class:`~torchvision.ops.FeaturePyramidNetwork` with P6/P7 extra levels, and a
torchvision FCOS or RetinaNet head predicts one class, "organism". The ImageNet
weights are the offline EfficientNet-Lite files the encoder uses
(:func:`embedder.backbones.efficientnets.imagenet_lite`); no detector weights are
downloaded. A detector is a self-describing folder::

    config.json           DetectorConfig (architecture, sizes, normalisation)
    weights.safetensors   the state dict (never unpickled)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from embedder.detection.defaults import ARCHITECTURES
from index.errors import ModelError
from index.files import file_sha256, write_json_atomic

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
YOLOX = "yolox-nano"  # COCO-pretrained YOLOX-Nano (embedder.detection.yolox_model), weights fetched at first use


@dataclass(frozen=True)
class DetectorConfig:
    """What builds a detector and how its input is prepared."""

    arch: str = "fcos"  # fcos | retinanet (torchvision heads) | yolox-nano (COCO YOLOX-Nano, one class)
    backbone: str = "efficientnet_lite0"  # a timm name; efficientnet_lite* get the offline ImageNet weights
    image_size: int = 512  # frames are resized so their longer side is this many pixels
    fpn_channels: int = 96  # FPN and head width (torchvision's default 256 is 7x the CPU cost)
    head_convs: int = 2  # convolutions per head branch (torchvision's default is 4)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # the backbone's input normalisation
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    score_thresh: float = 0.05  # boxes kept before NMS (low: evaluation wants the whole ranking)
    nms_thresh: float = 0.5
    max_detections: int = 100  # per frame (aquarium frames hold up to 56 organisms)
    weights_sha256: str | None = None  # set by save_detector

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelError(f"detector config has unknown fields: {', '.join(sorted(unknown))}")
        data = dict(data)
        for key in ("mean", "std"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def hash(self) -> str:
        """A short hash of everything that changes the detector's answers."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class TimmFPN(nn.Module):
    """A timm ``features_only`` backbone + FPN (+ P6/P7): an OrderedDict of ``out_channels`` maps."""

    def __init__(self, body: nn.Module, out_channels: int) -> None:
        super().__init__()
        from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

        self.body = body
        channels = body.feature_info.channels()
        self.fpn = FeaturePyramidNetwork(channels, out_channels, extra_blocks=LastLevelP6P7(out_channels, out_channels))
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = self.body(x)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))


def _body(config: DetectorConfig, pretrained: bool) -> nn.Module:
    import timm

    try:
        body = timm.create_model(config.backbone, pretrained=False, features_only=True, out_indices=(2, 3, 4))
    except Exception as exc:  # noqa: BLE001 - unknown name or no feature support: one line
        raise ModelError(f"backbone {config.backbone!r} cannot serve a detector: {str(exc).splitlines()[0]}") from None
    if pretrained:
        if not config.backbone.startswith("efficientnet_lite"):
            raise ModelError(f"no offline ImageNet weights for {config.backbone}; use efficientnet_lite0")
        from embedder.backbones.efficientnets import imagenet_lite

        classifier, _, _ = imagenet_lite(config.backbone)
        state = {
            k: v for k, v in classifier.state_dict().items() if not k.startswith(("classifier.", "conv_head.", "bn2."))
        }
        missing, _ = body.load_state_dict(state, strict=False)
        if missing:
            raise ModelError(f"ImageNet weights do not fit the {config.backbone} feature body ({missing[:3]})")
    for module in body.modules():  # frozen batch statistics: frames come a few at a time
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
            module.weight.requires_grad_(False)
            module.bias.requires_grad_(False)
    return body


def detector_config(arch: str, image_size: int, fpn_channels: int = 96) -> DetectorConfig:
    """The config a new ``arch`` detector starts from (YOLOX: its own body and input, BGR 0-255)."""
    if arch == YOLOX:
        return DetectorConfig(
            arch=arch,
            backbone="yolox_nano_coco",
            image_size=image_size,
            fpn_channels=0,
            head_convs=0,
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
        )
    return DetectorConfig(arch=arch, image_size=image_size, fpn_channels=fpn_channels)


def build_detector(config: DetectorConfig, pretrained: bool = True) -> nn.Module:
    """A torchvision detector for ``config`` (one class, label 1 = organism).

    Inputs: a list of (3, H, W) float tensors in [0, 1]; the model resizes to
    ``image_size`` and normalises itself. Raises ModelError for an unknown
    architecture or backbone, or missing ImageNet weights. ``yolox-nano`` is built from the
    COCO ONNX file (fetched at first use, :func:`embedder.detection.yolox_weights.yolox_nano_onnx`)
    whatever ``pretrained`` says: the graph comes from it.
    """
    if config.arch not in ARCHITECTURES:
        raise ModelError(f"unknown detector architecture {config.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if config.arch == YOLOX:
        from embedder.detection.yolox_model import YoloxDetector, convert_yolox
        from embedder.detection.yolox_weights import yolox_nano_onnx

        model = YoloxDetector(
            convert_yolox(yolox_nano_onnx().path, num_classes=1),
            1,
            config.image_size,
            config.score_thresh,
            config.nms_thresh,
            config.max_detections,
        )
        model.detector_config = config
        return model
    backbone = TimmFPN(_body(config, pretrained), config.fpn_channels)
    common = dict(
        min_size=config.image_size,
        max_size=config.image_size,
        image_mean=list(config.mean),
        image_std=list(config.std),
        score_thresh=config.score_thresh,
        nms_thresh=config.nms_thresh,
        detections_per_img=config.max_detections,
    )
    if config.arch == "fcos":
        from torchvision.models.detection import FCOS
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.fcos import FCOSHead

        anchors = AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((1.0,),) * 5)
        head = FCOSHead(config.fpn_channels, 1, 2, num_convs=config.head_convs)
        model = FCOS(backbone, num_classes=2, anchor_generator=anchors, head=head, **common)
    else:
        from torchvision.models.detection import RetinaNet
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.retinanet import RetinaNetHead

        sizes = tuple((s, int(s * 2 ** (1 / 3)), int(s * 2 ** (2 / 3))) for s in (16, 32, 64, 128, 256))
        anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * 5)
        head = RetinaNetHead(config.fpn_channels, anchors.num_anchors_per_location()[0], 2)
        model = RetinaNet(backbone, num_classes=2, anchor_generator=anchors, head=head, **common)
    model.detector_config = config
    return model


def keep_bn_frozen(model: nn.Module) -> None:
    """After ``model.train()``: put the backbone's BatchNorm layers back in eval mode."""
    if not hasattr(model, "backbone"):  # YOLOX: batch norm folded into its convolutions
        return
    for module in model.backbone.body.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()


def save_detector(model: nn.Module, config: DetectorConfig, folder: Path | str) -> DetectorConfig:
    """Write ``config.json`` + ``weights.safetensors`` into ``folder`` (weights first, atomically)."""
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_model(model, str(tmp))
    os.replace(tmp, folder / WEIGHTS_FILE)
    config = dataclasses.replace(config, weights_sha256=file_sha256(folder / WEIGHTS_FILE))
    write_json_atomic(folder / CONFIG_FILE, config.to_dict())
    return config


def read_detector_config(folder: Path | str) -> DetectorConfig:
    """The config of a detector folder. Raises ModelError when missing or unreadable."""
    path = Path(folder) / CONFIG_FILE
    try:
        return DetectorConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ModelError(f"{folder} is not a detector folder: no {CONFIG_FILE}") from None
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path}: unreadable detector config ({exc})") from None


def load_detector(folder: Path | str) -> tuple[nn.Module, DetectorConfig]:
    """Rebuild the detector of ``folder`` and load its safetensors weights (eval mode).

    Raises ModelError for a missing folder or file, a weights hash that does not
    match the config, or weights that do not fit the architecture.
    """
    from safetensors.torch import load_model

    folder = Path(folder)
    config = read_detector_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{folder} has no {WEIGHTS_FILE}")
    if config.weights_sha256 and file_sha256(weights) != config.weights_sha256:
        raise ModelError(f"{weights}: sha256 does not match its config (file changed or truncated)")
    model = build_detector(config, pretrained=False)
    try:
        load_model(model, str(weights), strict=True)
    except Exception as exc:  # noqa: BLE001 - any mismatch: one line
        raise ModelError(f"{weights} does not fit a {config.arch} detector: {str(exc).splitlines()[0][:120]}") from None
    return model.eval(), config
