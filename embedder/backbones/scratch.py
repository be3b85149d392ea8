"""Backbones trained from scratch: ``tiny`` (tests, seconds on a CPU) and ``cnn``."""

from __future__ import annotations

from typing import Any

from torch import nn

from embedder.backbones._registry import Backbone, no_pretrained, register_backbone
from embedder.backbones.weights import load_into


def _conv_bn(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@register_backbone("tiny")
def _tiny(weights: str, image_size: int, arch: dict[str, Any] | None) -> Backbone:
    """Two stride-2 convolutions (8, 16 channels) and global average pooling."""
    no_pretrained("tiny", weights)
    module = nn.Sequential(*_conv_bn(3, 8, 2), *_conv_bn(8, 16, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if weights != "none":
        load_into(module, weights)
    return Backbone(module, 16, last_stage=("3.", "4."))


@register_backbone("cnn")
def _cnn(weights: str, image_size: int, arch: dict[str, Any] | None) -> Backbone:
    """4 blocks (64->128->256->512), each a stride-2 conv then a conv, BN+ReLU
    after each; global average pooling and dropout. About 4.7 M parameters."""
    no_pretrained("cnn", weights)
    blocks, cin = [], 3
    for cout in (64, 128, 256, 512):
        blocks.append(nn.Sequential(*_conv_bn(cin, cout, 2), *_conv_bn(cout, cout, 1)))
        cin = cout
    module = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2))
    if weights != "none":
        load_into(module, weights)
    return Backbone(module, 512, last_stage=("3.",))
