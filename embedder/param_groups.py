"""The optimiser's parameter groups: lower learning rates for early layers, and LP-FT's probe phase.

- ``layer_lr_decay`` (Howard & Ruder 2018; used by BEiT / DINOv2 fine-tunes): the backbone's stages,
  in the order they run (stem, blocks.0, ..., the last stage), get ``lr * decay ** (stages after it)``;
  the head and the loss's parameters keep ``lr``. 1.0 = one learning rate for everything.
- ``lp_epochs`` (LP-FT, Kumar et al. 2022): the first epochs train only the head and the loss (a
  linear probe on the pretrained features), so the fine-tune that follows starts from a fitted head
  instead of distorting the features to fit a random one. :func:`set_backbone_trainable` switches
  the backbone between the two phases; parameters left frozen by ``freeze`` stay frozen.
"""

from __future__ import annotations

from torch import nn


def stage_of(name: str) -> str:
    """``blocks.3.1.conv.weight`` -> ``blocks.3``; ``conv_stem.weight`` -> ``conv_stem``."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]


def backbone_groups(backbone: nn.Module, lr: float, decay: float, weight_decay: float) -> list[dict]:
    """AdamW parameter groups of the backbone's trainable parameters, one per stage, input first."""
    stages: dict[str, list[nn.Parameter]] = {}
    for name, param in backbone.named_parameters():
        if param.requires_grad:
            stages.setdefault(stage_of(name), []).append(param)
    n = len(stages)
    return [
        {"params": params, "lr": lr * decay ** (n - 1 - i), "weight_decay": weight_decay, "stage": stage}
        for i, (stage, params) in enumerate(stages.items())
    ]


def set_backbone_trainable(model: nn.Module, trainable: set[nn.Parameter], on: bool) -> None:
    """During LP (``on=False``) nothing in the backbone trains; after it, ``trainable`` does again."""
    for param in model.backbone.parameters():
        param.requires_grad_(on and param in trainable)
