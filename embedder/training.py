"""Training an embedding model with balanced P x K batches and a metric loss.

``train(config, train_items, val_items, out_dir)``: AdamW, cosine (with one
warm-up epoch) or plateau schedule, mixed precision on CUDA, gradient clipping,
deterministic seeds. Each epoch is validated by nearest prototype
(:mod:`embedder.trainset`); the best model by F1-macro is kept in ``out_dir`` and
a resumable checkpoint in ``out_dir/last``. Randomness of epoch ``e`` derives
from ``(seed, e)``, and a mid-epoch checkpoint keeps the RNG state, so a resumed
run retraces the uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from embedder.checkpoint import load_checkpoint, read_loop_state, restore_rng, rng_snapshot, save_checkpoint
from embedder.curves import write_history
from embedder.device import amp_dtype, resolve_device
from embedder.encoding import default_workers
from embedder.losses import build_loss
from embedder.model import build_model, save_model
from embedder.param_groups import backbone_groups, set_backbone_trainable
from embedder.sampling import PKSampler, epoch_seed
from embedder.subtree_loss import SubtreeSoftmaxLoss, membership
from embedder.train_config import TrainConfig, TrainResult
from embedder.trainset import CropDataset, TrainData, prepare, validate
from embedder.transforms import train_transform
from index.errors import ModelError

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainResult", "train"]

#: Config fields that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = frozenset({"epochs", "patience", "workers", "device", "wise_alpha"})


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=0.5, patience=max(1, config.patience // 2)
        )
    total = config.epochs * steps_per_epoch
    warmup = min(steps_per_epoch, max(1, total // 10))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _train_step(model, loss_fn, optimizer, scaler, images, labels, dtype, grad_clip) -> float:
    """One optimisation step; returns the loss value."""
    with torch.autocast(images.device.type, dtype=dtype, enabled=dtype is not None):
        embeddings = model.embed_head(images)
    loss = loss_fn(embeddings.float(), labels)
    if not torch.isfinite(loss):
        raise ModelError(f"training loss became {loss.item()}; lower the learning rate")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return float(loss.item())


class _Run:
    """The objects of one training run and its loop state (JSON-ready ``state``)."""

    def __init__(
        self,
        config: TrainConfig,
        data: TrainData,
        out_dir: Path,
        progress: bool,
        subtrees: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.config, self.data, self.out_dir, self.progress = config, data, out_dir, progress
        self.device = resolve_device(config.device)
        self.workers = default_workers() if config.workers is None else config.workers
        classes = len(data.classes)
        self.p, self.k = min(config.batch_p, classes), config.batch_k
        if self.p < config.batch_p:
            log.warning(
                "only %d classes: batches of %d x %d instead of %d x %d",
                classes,
                self.p,
                self.k,
                config.batch_p,
                self.k,
            )
        self.steps = max(1, len(data.train_paths) // (self.p * self.k))
        _seed_all(config.seed)
        self.model = build_model(
            config.backbone,
            weights=config.weights,
            dim=config.dim,
            image_size=config.image_size,
            freeze=config.freeze,
            output=config.output,
            geometry=config.geometry,
            class_names=tuple(data.classes),
            training=config.to_dict(),
        ).to(self.device)
        if config.label_rank == "subtree":
            members = membership(list(data.classes), {k: list(v) for k, v in (subtrees or {}).items()})
            log.info("subtree loss: %d classes hold other classes", int((members.sum(1) > 1).sum()))
            self.loss = SubtreeSoftmaxLoss(classes, config.dim, members).to(self.device)
        else:
            self.loss = build_loss(config.loss, classes, config.dim).to(self.device)
        self.trainable = {q for q in self.model.backbone.parameters() if q.requires_grad}
        self.optimizer = torch.optim.AdamW(
            [
                *backbone_groups(self.model.backbone, config.lr, config.layer_lr_decay, config.weight_decay),
                {"params": list(self.model.head.parameters()), "weight_decay": config.weight_decay},
                {"params": list(self.loss.parameters()), "weight_decay": 0.0},
            ],
            lr=config.lr,
        )
        self.scheduler = _scheduler(config, self.optimizer, self.steps)
        self.dtype = amp_dtype(self.device) if config.amp else None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.sampler = PKSampler(data.train_labels, self.p, self.k, self.steps * self.p * self.k, seed=config.seed)
        self.dataset = CropDataset(
            data.train_paths, data.train_labels, train_transform(self.model.config, config.augment)
        )
        self.last = out_dir / "last"
        self.state: dict[str, Any] = {
            "epoch": 0,
            "step": 0,
            "epoch_losses": [],
            "best_f1": -1.0,
            "best_epoch": -1,
            "bad_epochs": 0,
            "history": [],
            "stopped_early": False,
            "config": config.to_dict(),
        }
        self.saved_rng: dict[str, Any] | None = None  # RNG of a mid-epoch checkpoint
        self.snapshot = rng_snapshot()  # RNG state before the batch in flight

    def resume(self) -> None:
        saved = read_loop_state(self.last)["config"]
        changed = sorted(
            k for k, v in self.config.to_dict().items() if saved.get(k) != v and k not in RESUMABLE_CHANGES
        )
        if changed:
            raise ModelError(
                f"cannot resume: the checkpoint was trained with different {', '.join(changed)}",
                hint="resume with the same config, or train into a fresh folder",
            )
        self.state, self.saved_rng = load_checkpoint(
            self.last,
            model=self.model,
            loss=self.loss,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            scaler=self.scaler,
        )
        self.state["config"] = self.config.to_dict()
        self.state["stopped_early"] = self.state["bad_epochs"] >= self.config.patience
        log.info("resuming at epoch %d, batch %d", self.state["epoch"] + 1, self.state["step"])

    def checkpoint(self, rng: dict[str, Any]) -> None:
        self.state["sampler"] = self.sampler.state_dict()
        save_checkpoint(
            self.last,
            model=self.model,
            loss=self.loss,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            scaler=self.scaler,
            loop_state=self.state,
            rng=rng,
        )

    def run(self) -> None:
        while self.state["epoch"] < self.config.epochs and not self.state["stopped_early"]:
            seen, seconds = self._train_epoch()
            self._end_epoch(seen, seconds)

    def _train_epoch(self) -> tuple[int, float]:
        state, config, epoch = self.state, self.config, self.state["epoch"]
        if state["step"] == 0:
            _seed_all(epoch_seed(config.seed, epoch))
        elif self.saved_rng is not None:  # mid-epoch resume: continue the saved streams
            restore_rng(self.saved_rng)
        self.saved_rng = None
        self.sampler.set_epoch(epoch, state["step"])
        loader = DataLoader(
            self.dataset,
            batch_size=self.p * self.k,
            sampler=self.sampler,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            generator=torch.Generator().manual_seed(epoch_seed(config.seed, epoch)),
        )
        set_backbone_trainable(self.model, self.trainable, epoch >= config.lp_epochs)
        self.model.train()
        bar = tqdm(
            total=self.steps,
            initial=state["step"],
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="batch",
            disable=not self.progress,
            leave=False,
        )
        losses = state["epoch_losses"]  # kept across a mid-epoch resume
        seen, t0 = 0, time.perf_counter()
        batches = iter(loader)
        while True:
            self.snapshot = rng_snapshot()
            try:
                images, labels = next(batches)
            except StopIteration:
                break
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            losses.append(
                _train_step(
                    self.model, self.loss, self.optimizer, self.scaler, images, labels, self.dtype, config.grad_clip
                )
            )
            if config.schedule == "cosine":
                self.scheduler.step()
            state["step"] += 1
            seen += len(images)
            bar.set_postfix(loss=f"{np.mean(losses):.3f}", crops_s=f"{seen / (time.perf_counter() - t0):.0f}")
            bar.update(1)
        bar.close()
        return seen, time.perf_counter() - t0

    def _end_epoch(self, seen: int, train_seconds: float) -> None:
        state, epoch, t0 = self.state, self.state["epoch"], time.perf_counter()
        metrics = validate(self.model, self.data, self.device, self.workers)
        f1 = metrics["f1_macro"]
        if self.config.schedule == "plateau":
            self.scheduler.step(f1)
        if f1 > state["best_f1"]:
            state.update(best_f1=f1, best_epoch=epoch + 1, bad_epochs=0)
            save_model(self.model, self.out_dir)
        else:
            state["bad_epochs"] += 1
        losses = state["epoch_losses"]
        state["history"].append(
            {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)) if losses else None,
                "lr": self.optimizer.param_groups[-2]["lr"],  # the head's
                **{f"val_{key}": value for key, value in metrics.items()},
                "train_crops_s": round(seen / train_seconds, 1) if seen else None,
                "seconds": round(train_seconds + time.perf_counter() - t0, 2),
            }
        )
        log.info(
            "epoch %d: loss %.4f, val top1 %.3f, F1-macro %.3f%s",
            epoch + 1,
            state["history"][-1]["train_loss"] or float("nan"),
            metrics["top1"],
            f1,
            " (best)" if state["best_epoch"] == epoch + 1 else "",
        )
        state.update(epoch=epoch + 1, step=0, epoch_losses=[])
        state["stopped_early"] = state["bad_epochs"] >= self.config.patience and state["epoch"] < self.config.epochs
        write_history(state["history"], self.out_dir)
        self.checkpoint(rng_snapshot())

    def result(self, seconds: float) -> TrainResult:
        state = self.state
        best = next(h for h in state["history"] if h["epoch"] == state["best_epoch"])
        return TrainResult(
            out_dir=self.out_dir,
            best_epoch=state["best_epoch"],
            best_metrics={k.removeprefix("val_"): v for k, v in best.items() if k.startswith("val_")},
            epochs_run=state["epoch"],
            stopped_early=state["stopped_early"],
            history=list(state["history"]),
            seconds=seconds,
        )


def train(
    config: TrainConfig,
    train_items: Sequence[tuple[Path, str]],
    val_items: Sequence[tuple[Path, str]],
    out_dir: Path,
    *,
    resume: bool = False,
    progress: bool = True,
    subtrees: Mapping[str, Sequence[str]] | None = None,
) -> TrainResult:
    """Train and keep the best model (by validation F1-macro) in ``out_dir``.

    Args:
        train_items / val_items: ``(crop file, class label)`` pairs; validation
            crops of classes absent from training are ignored.
        resume: continue from ``out_dir/last`` (same config; ``epochs``,
            ``patience``, ``workers`` and ``device`` may differ).
        subtrees: class -> the classes strictly below it (``config.label_rank == "subtree"``
            only; the caller reads them from its taxonomy). None or empty: the flat loss.
    With ``config.wise_alpha`` below 1 (or None: chosen on validation) the best model is
    averaged with its pretrained weights (WiSE-FT, :mod:`embedder.wise`) before it is kept.
    Writes ``out_dir/{config.json, weights.safetensors, history.json, curves.png}``
    and ``out_dir/last/``. Ctrl-C saves ``last/`` and re-raises KeyboardInterrupt.

    Raises:
        InvalidInput: fewer than 2 classes, no usable validation crops, a bad config,
            an unreadable crop (BadImage).
        ModelError: unknown backbone/loss, ``cuda`` without CUDA, a checkpoint that
            cannot be resumed, a loss that becomes NaN.
    """
    config.validate()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(config, prepare(train_items, val_items), out_dir, progress, subtrees)
    if resume:
        run.resume()
    try:
        run.run()
    except KeyboardInterrupt:
        log.warning("interrupted at epoch %d batch %d; saving %s", run.state["epoch"] + 1, run.state["step"], run.last)
        run.checkpoint(run.snapshot)
        raise
    wise_alpha, wise_table = None, {}
    if config.wise_alpha is None or config.wise_alpha < 1.0:
        from embedder.wise import average_saved

        wise_alpha, wise_table = average_saved(out_dir, run.data, config, run.device, run.workers)
    result = run.result(time.perf_counter() - started)
    return dataclasses.replace(result, wise_alpha=wise_alpha, wise_val_f1=wise_table)
