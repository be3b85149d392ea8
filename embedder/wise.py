"""WiSE-FT: a weight-space average of the fine-tuned and the pretrained backbone.

Wortsman et al. 2022 ("Robust fine-tuning of zero-shot models"): fine-tuning folds
the embedding onto the trained classes; averaging every backbone tensor with the
pretrained one, ``theta = (1 - alpha) * theta_pretrained + alpha * theta_finetuned``,
keeps most of the fine-tuned accuracy and most of the pretrained generality, at no
cost when embedding (the result is one ordinary model). The head has no pretrained
counterpart and is kept as trained. ``alpha`` is chosen on validation
(:func:`choose_alpha`); measured: bench/leave_species_out.py (bench/RESULTS.md).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable, Sequence

import torch

from embedder.backbones import create_backbone
from embedder.model import EmbeddingModel
from index.errors import ModelError

log = logging.getLogger(__name__)

#: the grid :func:`choose_alpha` searches (share of the fine-tuned weights), most general first
ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)


def pretrained_state(model: EmbeddingModel) -> dict[str, torch.Tensor]:
    """The backbone's state before fine-tuning (its ``weights`` origin, rebuilt offline).

    Raises:
        ModelError: the model was trained from scratch (``weights="none"``): nothing to average with.
    """
    config = model.config
    if config.weights in ("none", ""):
        raise ModelError("WiSE-FT needs pretrained weights; this model was trained from scratch")
    spec = create_backbone(config.backbone, config.weights, config.image_size)
    return {k: v.detach().cpu() for k, v in spec.module.state_dict().items()}


def wise(model: EmbeddingModel, pretrained: dict[str, torch.Tensor], alpha: float) -> EmbeddingModel:
    """A copy of ``model`` whose backbone is ``(1 - alpha) * pretrained + alpha * fine-tuned``.

    Floating-point tensors (weights and batch-norm running statistics) are averaged;
    integer buffers (batch counters) keep the fine-tuned value.

    Raises:
        ModelError: ``alpha`` outside [0, 1], or a pretrained state that does not fit.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ModelError(f"WiSE-FT alpha must be in [0, 1], got {alpha}")
    out = copy.deepcopy(model).cpu()
    tuned = out.backbone.state_dict()
    if set(tuned) != set(pretrained):
        raise ModelError("the pretrained backbone does not fit the fine-tuned one")
    mixed = {}
    for key, value in tuned.items():
        base = pretrained[key].to(value.dtype)
        if base.shape != value.shape:
            raise ModelError(f"WiSE-FT: {key} is {tuple(base.shape)} pretrained, {tuple(value.shape)} fine-tuned")
        mixed[key] = (1 - alpha) * base + alpha * value if value.is_floating_point() else value
    out.backbone.load_state_dict(mixed)
    out.config = dataclasses.replace(out.config, wise_alpha=float(alpha), weights_sha256=None)
    return out.eval()


def choose_alpha(
    scores: Callable[[float], float], alphas: Sequence[float] = ALPHAS, tolerance: float = 0.01
) -> tuple[float, dict[float, float]]:
    """The most general ``alpha`` (smallest share of fine-tuned weights) whose validation
    score is within ``tolerance`` of the best on the grid; ``scores(alpha)`` is e.g. the
    validation F1-macro of the averaged model. Returns ``(alpha, {alpha: score})``."""
    table = {float(a): float(scores(a)) for a in sorted(alphas)}
    best = max(table.values())
    chosen = min(a for a, v in table.items() if v >= best - tolerance)
    log.info(
        "WiSE-FT validation F1 by alpha: %s -> alpha %.2f",
        ", ".join(f"{a:.1f}: {v:.3f}" for a, v in table.items()),
        chosen,
    )
    return chosen, table


def average_saved(out_dir, data, config, device, workers: int) -> tuple[float, dict[float, float]]:
    """WiSE-FT the best model saved in ``out_dir`` in place, ``alpha`` = ``config.wise_alpha``
    or, when that is None, :func:`choose_alpha` by validation F1-macro of the model's output.

    Returns ``(alpha, {alpha: validation F1-macro})`` (one entry when ``alpha`` was given).
    """
    from embedder.model import load_model, save_model
    from embedder.trainset import validate

    tuned = load_model(out_dir)
    base = pretrained_state(tuned)

    def f1(alpha: float) -> float:
        return float(validate(wise(tuned, base, alpha).to(device), data, device, workers)["f1_macro"])

    if config.wise_alpha is None:
        alpha, table = choose_alpha(f1)
    else:
        alpha, table = float(config.wise_alpha), {}
    save_model(wise(tuned, base, alpha), out_dir)
    return alpha, table
