"""Compare metric losses (and backbones / input sizes) at one training budget.

    .venv/bin/python -m bench.train_losses [--dataset fish4knowledge|synthetic]
        [--losses softmax arcface subcenter-arcface triplet quadruplet]
        [--backbones resnet18] [--image-sizes 64] [--epochs 5] [--workers N] [--species 15]
        [--defaults]   (one timing run of TrainConfig() as shipped)

fish4knowledge: the 15 most frequent species; train/val/test split by track
(group key ``fish_(\\d+)_``) with StratifiedGroupKFold so no track crosses splits.
synthetic: the reef of index/sources/synthetic.py (16 species, 4 held out, 400
frames), known species only, boxes cropped with PIL, split by frame.

Each run trains with embedder.training.train (best epoch by val F1-macro), then
classifies the test split by nearest prototype (class means of the train split):
top-1, top-5, F1-macro, plus training throughput (crops/s) and wall time.
Prints one table; writes bench/results/train_losses.json (one key per dataset).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import resource
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from bench.common import FISH4K, RESULTS, bench_parser, fish4knowledge, split, store_figures, synthetic_reef, train_on


def synthetic(work: Path) -> tuple[list[Path], list[str], list[str]]:
    """Crops of the known (not held-out) species of a fresh synthetic reef, grouped by frame."""
    paths, labels, groups, known = synthetic_reef(work)
    keep = [i for i, label in enumerate(labels) if label in known]
    return [paths[i] for i in keep], [labels[i] for i in keep], [groups[i] for i in keep]


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (DataLoader workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_one(config, paths, labels, idx, work: Path) -> dict:
    from embedder.encoding import encode_paths
    from embedder.model import load_model
    from embedder.validation import prototype_metrics

    train_idx, val_idx, test_idx = idx
    out = work / f"{config.backbone}-{config.image_size}-{config.loss}"
    cpu0 = _cpu_seconds()
    result, seconds = train_on(config, paths, labels, train_idx, val_idx, out)
    cpu = _cpu_seconds() - cpu0
    model = load_model(out)
    classes = {name: i for i, name in enumerate(model.config.class_names)}
    ref = encode_paths(model, [paths[i] for i in train_idx], workers=config.workers, device="cpu", progress=False)
    query_idx = [i for i in test_idx if labels[i] in classes]
    query = encode_paths(model, [paths[i] for i in query_idx], workers=config.workers, device="cpu", progress=False)
    metrics = prototype_metrics(
        ref.vectors,
        np.array([classes[labels[train_idx[j]]] for j in ref.ok]),
        query.vectors,
        np.array([classes[labels[query_idx[j]]] for j in query.ok]),
        len(classes),
    )
    rates = [h["train_crops_s"] for h in result.history if h.get("train_crops_s")]
    return {
        "loss": config.loss,
        "backbone": config.backbone,
        "image_size": config.image_size,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "test_top1": round(metrics["top1"], 4),
        "test_top5": round(metrics["top5"], 4),
        "test_f1_macro": round(metrics["f1_macro"], 4),
        "val_f1_macro": round(result.best_metrics["f1_macro"], 4),
        "train_crops_s": round(float(np.median(rates)), 1),
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
    }


def defaults_run(args, paths, labels, idx, work: Path) -> None:
    """Time the shipped defaults on ~3,000 crops (train+val folds), validating on the test fold."""
    from embedder.train_config import TrainConfig

    config = dataclasses.replace(TrainConfig(), device="cpu")
    train_idx, test_idx = np.concatenate(idx[:2]), idx[2]
    cpu0 = _cpu_seconds()
    result, seconds = train_on(config, paths, labels, train_idx, test_idx, work / "defaults")
    cpu = _cpu_seconds() - cpu0
    rates = [h["train_crops_s"] for h in result.history]
    row = {
        "config": config.to_dict(),
        "train_crops": len(train_idx),
        "val_crops": len(test_idx),
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best": result.best_metrics,
        "train_crops_s_median": float(np.median(rates)),
        "train_crops_s_max": float(np.max(rates)),
        "history": result.history,
    }
    print(
        f"defaults ({config.backbone} {config.image_size}px {config.loss} {config.epochs} epochs) on "
        f"{len(train_idx)} train crops: {seconds:.0f} s wall ({cpu:.0f} s cpu), best epoch {result.best_epoch}: "
        f"top1 {result.best_metrics['top1']:.3f} top5 {result.best_metrics['top5']:.3f} "
        f"F1-macro {result.best_metrics['f1_macro']:.3f}; train crops/s median {row['train_crops_s_median']:.0f} "
        f"max {row['train_crops_s_max']:.0f}"
    )
    _store(f"{args.dataset}-defaults" + (f"-{args.tag}" if args.tag else ""), row)


def _store(key: str, value: dict) -> None:
    store_figures(RESULTS / "train_losses.json", key, value)


def main() -> None:
    from embedder.train_config import TrainConfig

    ap = bench_parser(__file__, __doc__)
    ap.add_argument("--dataset", choices=("fish4knowledge", "synthetic"), default="fish4knowledge")
    ap.add_argument("--data", type=Path, default=FISH4K)
    ap.add_argument("--species", type=int, default=15, help="fish4knowledge: most frequent N species")
    ap.add_argument(
        "--losses",
        nargs="+",
        default=None,
        metavar="LOSS",
        help="losses of embedder.losses.LOSSES to compare (default: every one)",
    )
    ap.add_argument("--backbones", nargs="+", default=[TrainConfig.backbone])
    ap.add_argument("--image-sizes", type=int, nargs="+", default=[TrainConfig.image_size])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=TrainConfig.workers, help="default: automatic")
    ap.add_argument("--augment", default=TrainConfig.augment)
    ap.add_argument("--tag", default="", help="suffix of the results key (keeps earlier runs)")
    ap.add_argument(
        "--defaults",
        action="store_true",
        help="one timing run of TrainConfig() as shipped: train on train+val, validate on test",
    )
    args = ap.parse_args()
    import torch

    from embedder.losses import LOSSES

    unknown = sorted(set(args.losses or ()) - set(LOSSES))
    if unknown:
        ap.error(f"unknown loss {', '.join(unknown)}; valid: {', '.join(LOSSES)}")
    args.losses = args.losses or list(LOSSES)
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="oceanid-bench-") as tmp:
        work = Path(tmp)
        if args.dataset == "fish4knowledge":
            paths, labels, groups = fish4knowledge(args.data, args.species)
        else:
            paths, labels, groups = synthetic(work)
        idx = split(labels, groups)
        assert not set(np.array(groups)[idx[0]]) & set(np.array(groups)[idx[2]]), "a group crosses train/test"
        sizes = [len(i) for i in idx]
        print(
            f"{args.dataset}: {len(set(labels))} classes, train/val/test = {sizes[0]}/{sizes[1]}/{sizes[2]} "
            f"crops, {args.epochs} epochs, cpus {os.cpu_count()}, torch threads {torch.get_num_threads()}",
            flush=True,
        )
        if args.defaults:
            return defaults_run(args, paths, labels, idx, work)
        rows = []
        for backbone, size, loss in itertools.product(args.backbones, args.image_sizes, args.losses):
            config = TrainConfig(
                backbone=backbone,
                image_size=size,
                loss=loss,
                epochs=args.epochs,
                patience=args.epochs,
                workers=args.workers,
                augment=args.augment,
                device="cpu",
            )
            rows.append(run_one(config, paths, labels, idx, work))
            r = rows[-1]
            print(
                f"  {backbone:>9} {size:>4} {loss:>18}  top1 {r['test_top1']:.3f}  top5 {r['test_top5']:.3f}  "
                f"F1 {r['test_f1_macro']:.3f}  {r['train_crops_s']:>6.1f} crops/s  {r['seconds']:>6.0f} s "
                f"(cpu {r['cpu_seconds']:.0f} s)",
                flush=True,
            )

    print(
        f"\n{'backbone':>9} {'px':>4} {'loss':>18} {'top1':>6} {'top5':>6} {'F1-mac':>6} {'crops/s':>8} {'s':>6} "
        f"{'cpu s':>6}"
    )
    for r in rows:
        print(
            f"{r['backbone']:>9} {r['image_size']:>4} {r['loss']:>18} {r['test_top1']:>6.3f} "
            f"{r['test_top5']:>6.3f} {r['test_f1_macro']:>6.3f} {r['train_crops_s']:>8.1f} {r['seconds']:>6.0f} "
            f"{r['cpu_seconds']:>6.0f}"
        )
    _store(
        args.dataset + (f"-{args.tag}" if args.tag else ""),
        {
            "classes": len(set(labels)),
            "train_val_test": sizes,
            "epochs": args.epochs,
            "augment": args.augment,
            "cpus": os.cpu_count(),
            "per_class_train": dict(Counter(labels[i] for i in idx[0])),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
