"""One command that compares training configurations on fish4knowledge and the synthetic reef.

    .venv/bin/python -m bench.train_sweep --dataset fish4knowledge \\
        --backbones resnet18:none efficientnet_lite0:imagenet efficientnet_lite2:imagenet \\
        --freeze none partial --sizes 96 --losses softmax arcface subcenter-arcface \\
        --epochs 5 --lrs 1e-3 [--lock /tmp/oceanid-cpu.lock]
    .venv/bin/python -m bench.train_sweep --report        (tables from the stored JSON)

Every combination of the listed options is one run; with ``--lock`` each run
takes the shared CPU lock on its own (others can interleave between runs).
Runs already in the JSON are skipped (same key), so a sweep can be resumed.

Data. fish4knowledge: the 15 most frequent species are known (train/val/test by
track, StratifiedGroupKFold, no track crosses splits); the other 8 are held out
as unknown, their tracks split in half into unknown-val and unknown-test.
synthetic: the reef of index/sources/synthetic.py (16 species, 4 held out), split
by frame the same way.

Per run: validation F1-macro (the one used to choose defaults), test top-1 /
top-5 / F1-macro by nearest prototype (class means of the training crops), for
every OOD scorer the test AUROC, FPR@95 and known-kept / unknown-flagged at the
threshold set on known validation crops (95% kept), the scorer that
``index.scoring.ood_choice.choose_scorer`` picks on validation, ECE of the species
probability before / after temperature scaling (fitted on validation, measured
on test), training seconds and crops/s.

Results: bench/figures/train_sweep.json (tracked), one key per run.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

from bench.common import (
    FIGURES,
    bench_parser,
    embed_all,
    fish4knowledge_all,
    known_unknown_splits,
    load_figures,
    machine,
    store_figures,
    synthetic_reef,
    train_on,
    utc_now,
)
from index.scoring.calibration import fit_temperature
from index.scoring.ood import SCORERS, calibrate, make_scorer
from index.scoring.ood_choice import choose_scorer
from index.scoring.prototypes import Prototypes

OUT = FIGURES / "train_sweep.json"
log = logging.getLogger("train_sweep")


@contextmanager
def cpu_lock(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def evaluate_run(model, paths, labels, idx: dict[str, np.ndarray], workers: int) -> dict:
    """Test classification, every scorer's OOD figures, the scorer choice and ECE of one trained model."""
    from index.metrics.classification import ood_metrics  # scikit-learn: imported when a run is measured

    order = np.concatenate(list(idx.values()))
    vectors = embed_all(model, [paths[i] for i in order], workers=workers)
    vec = {}
    start = 0
    for name, ix in idx.items():
        vec[name] = vectors[start : start + len(ix)]
        start += len(ix)
    lab = {name: np.array([labels[i] for i in ix]) for name, ix in idx.items()}
    protos = Prototypes.fit(vec["train"], lab["train"])
    names = np.asarray(protos.names)
    code = {n: i for i, n in enumerate(names)}
    sims = {s: protos.similarities(vec[s]).astype(np.float64) for s in ("val", "test")}
    y = {s: np.array([code[x] for x in lab[s]]) for s in ("val", "test")}
    from sklearn.metrics import f1_score, top_k_accuracy_score

    def cls(s: str) -> dict:
        pred = sims[s].argmax(1)
        per_class = f1_score(y[s], pred, average=None, labels=np.arange(len(names)), zero_division=0)
        return {
            "top1": float((pred == y[s]).mean()),
            "top5": float(top_k_accuracy_score(y[s], sims[s], k=5, labels=np.arange(len(names)))),
            "f1_macro": float(f1_score(y[s], pred, average="macro", zero_division=0)),
            "per_class_f1": dict(zip(names.tolist(), per_class.round(3).tolist(), strict=True)),
        }

    centres = {}
    for k in (2, 3):  # sub-centre prototypes (k-means per class) for the same embeddings
        sub = Prototypes.fit(vec["train"], lab["train"], n_centres=k)
        pred = sub.similarities(vec["test"]).argmax(1)
        centres[f"test_{k}_centres"] = {
            "top1": float((pred == y["test"]).mean()),
            "f1_macro": float(f1_score(y["test"], pred, average="macro", zero_division=0)),
        }
    ood = {}
    for name in SCORERS:
        scorer = make_scorer(name).fit(vec["train"], lab["train"], prototypes=protos)
        threshold = calibrate(scorer.score(vec["val"]))
        r = ood_metrics(scorer.score(vec["test"]), scorer.score(vec["unknown_test"]), threshold)
        ood[name] = {
            "auroc": r.auroc,
            "fpr95": r.fpr_at_95_tpr,
            "known_kept": r.known_accuracy,
            "unknown_flagged": r.unknown_accuracy,
            "threshold": r.threshold,
        }
    choice = choose_scorer(vec["train"], lab["train"], vec["val"], vec["unknown_val"], prototypes=protos)
    calib = fit_temperature(sims["val"], y["val"]).evaluated(sims["test"], y["test"])
    return {
        "val": cls("val"),
        "test": cls("test"),
        **centres,
        "ood_test": ood,
        "choice": choice.to_dict(),
        "calibration": calib.to_dict(),
        "n": {k: int(len(v)) for k, v in idx.items()},
    }


def run_key(dataset: str, c) -> str:
    return (
        f"{dataset}|{c.backbone}:{c.weights}|freeze={c.freeze}|{c.image_size}px|{c.loss}|{c.epochs}ep"
        f"|lr={c.lr:g}|{c.batch_p}x{c.batch_k}"
    )


def one_run(config, dataset, paths, labels, idx, work: Path) -> dict:
    from embedder.model import load_model

    out = work / "model"
    result, seconds = train_on(config, paths, labels, idx["train"], idx["val"], out)
    t1 = time.perf_counter()
    model = load_model(out)
    ev = evaluate_run(model, paths, labels, idx, workers=config.workers or 0)
    rates = [h["train_crops_s"] for h in result.history if h.get("train_crops_s")]
    return {
        "dataset": dataset,
        "config": config.to_dict(),
        "train_seconds": round(seconds, 1),
        "eval_seconds": round(time.perf_counter() - t1, 1),
        "train_crops_s": round(float(np.median(rates)), 1),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "val_f1_best_epoch": result.best_metrics,
        "history": result.history,
        "input_mean_std": [list(model.config.mean), list(model.config.std)],
        **ev,
        "when": utc_now(),
        "machine": machine(),
    }


def load() -> dict:
    return load_figures(OUT)


def store(key: str, row: dict) -> None:
    store_figures(OUT, key, row, indent=1, sort_keys=True)


def _label(c: dict) -> str:
    return (
        f"{c['backbone']}:{c['weights']} {c['freeze']} {c['image_size']}px {c['loss']} {c['epochs']}ep lr {c['lr']:g}"
    )


def report(default_key: dict[str, str] | None = None) -> None:
    """Markdown tables of every stored run (best validation F1-macro first) and the OOD table of the best run."""
    data = load()
    for dataset in sorted({r["dataset"] for r in data.values()}):
        rows = sorted(
            ((k, r) for k, r in data.items() if r["dataset"] == dataset), key=lambda kr: -kr[1]["val"]["f1_macro"]
        )
        print(f"\n### {dataset}: runs by validation F1-macro\n")
        print(
            "| run | val F1-macro | test top-1 | test top-5 | test F1-macro | F1 2 / 3 sub-centres | ECE raw -> T | "
            + " | ".join(f"AUROC {s}" for s in SCORERS)
            + " | train s | train crops/s |"
        )
        print("|" + "---|" * (9 + len(SCORERS)))
        for _, r in rows:
            t, cal = r["test"], r["calibration"]
            sub = "/".join(
                f"{r[f'test_{k}_centres']['f1_macro']:.3f}" if f"test_{k}_centres" in r else "-" for k in (2, 3)
            )
            print(
                f"| {_label(r['config'])} | {r['val']['f1_macro']:.3f} | {t['top1']:.3f} | {t['top5']:.3f} "
                f"| {t['f1_macro']:.3f} | {sub} | {cal['ece_test_uncalibrated']:.3f} -> {cal['ece_test']:.3f} | "
                + " | ".join(f"{r['ood_test'][s]['auroc']:.3f}" if s in r["ood_test"] else "-" for s in SCORERS)
                + f" | {r['train_seconds']:.0f} | {r['train_crops_s']:.0f} |"
            )
        _, best = rows[0]
        if default_key and dataset in default_key:
            best = data[default_key[dataset]]
        print(f"\n### {dataset}: OOD scorers, run {_label(best['config'])}\n")
        print(
            f"Test known {best['n']['test']} crops vs held-out species {best['n']['unknown_test']} crops; "
            "threshold accepts 95% of known validation crops.\n"
        )
        print("| scorer | AUROC | FPR@95 | known kept | unknown flagged | threshold | val AUROC (choice) |")
        print("|---|---|---|---|---|---|---|")
        for s, o in best["ood_test"].items():
            v = best["choice"]["per_scorer"].get(s, {}).get("auroc")
            print(
                f"| {s} | {o['auroc']:.3f} | {o['fpr95']:.3f} | {o['known_kept']:.3f} | {o['unknown_flagged']:.3f} "
                f"| {o['threshold']:.4f} | {'-' if v is None else f'{v:.3f}'} |"
            )
        cal = best["calibration"]
        print(
            f"\nchoose_scorer on validation picks **{best['choice']['scorer']}**; "
            f"temperature {cal['temperature']:.4f}, test ECE {cal['ece_test_uncalibrated']:.3f} (T=1) -> "
            f"{cal['ece_test']:.3f}; per-class test F1: "
            + ", ".join(f"{k} {v:.2f}" for k, v in best["test"]["per_class_f1"].items())
        )


def finalist(epochs: int, budget_s: float, crops: int) -> dict:
    """The fish4knowledge screening run with the best validation F1-macro whose training, scaled to
    ``crops`` crops and ``epochs`` epochs, fits ``budget_s`` (ties within 0.005 F1: higher validation
    AUROC of the chosen scorer). Returns its config dict."""
    runs = [r for r in load().values() if r["dataset"] == "fish4knowledge"]

    def cost(r: dict) -> float:
        return r["train_seconds"] / r["config"]["epochs"] * epochs * crops / r["n"]["train"]

    fits = [r for r in runs if cost(r) <= budget_s]
    if not fits:
        raise SystemExit(f"no screened run fits {budget_s:.0f} s at {epochs} epochs")
    top = max(r["val"]["f1_macro"] for r in fits)
    near = [r for r in fits if r["val"]["f1_macro"] >= top - 0.005]
    best = max(near, key=lambda r: r["choice"]["per_scorer"][r["choice"]["scorer"]].get("auroc", 0.0))
    print(
        f"finalist: {_label(best['config'])} (val F1 {best['val']['f1_macro']:.3f}; "
        f"{cost(best):.0f} s estimated for {crops} crops x {epochs} epochs)",
        flush=True,
    )
    return best["config"]


def main() -> None:
    from embedder.train_config import TrainConfig

    ap = bench_parser(__file__, __doc__)
    ap.add_argument("--dataset", choices=("fish4knowledge", "synthetic"), default="fish4knowledge")
    ap.add_argument(
        "--backbones",
        nargs="+",
        default=[f"{TrainConfig.backbone}:{TrainConfig.weights}"],
        help="NAME:WEIGHTS, e.g. efficientnet_lite0:imagenet resnet18:none",
    )
    ap.add_argument("--freeze", nargs="+", default=[TrainConfig.freeze])
    ap.add_argument("--sizes", type=int, nargs="+", default=[TrainConfig.image_size])
    ap.add_argument("--losses", nargs="+", default=[TrainConfig.loss])
    ap.add_argument("--epochs", type=int, nargs="+", default=[TrainConfig.epochs])
    ap.add_argument("--lrs", type=float, nargs="+", default=[TrainConfig.lr])
    ap.add_argument("--batch", default=None, help="PxK, e.g. 8x4 (default: TrainConfig's)")
    ap.add_argument("--lock", type=Path, default=None, help="take this flock around each run")
    ap.add_argument("--force", action="store_true", help="rerun keys already stored")
    ap.add_argument("--report", action="store_true")
    ap.add_argument(
        "--confirm",
        type=int,
        default=None,
        metavar="EPOCHS",
        help="rerun the best fish4knowledge screening run (see finalist()) at EPOCHS on --dataset",
    )
    ap.add_argument("--budget-s", type=float, default=600.0, help="--confirm: training budget for --budget-crops")
    ap.add_argument("--budget-crops", type=int, default=3000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.report:
        return report()
    bp, bk = (int(x) for x in args.batch.split("x")) if args.batch else (TrainConfig.batch_p, TrainConfig.batch_k)
    if args.confirm:
        c = finalist(args.confirm, args.budget_s, args.budget_crops)
        args.backbones, args.freeze = [f"{c['backbone']}:{c['weights']}"], [c["freeze"]]
        args.sizes, args.losses, args.epochs, args.lrs = [c["image_size"]], [c["loss"]], [args.confirm], [c["lr"]]
        bp, bk = c["batch_p"], c["batch_k"]
    with tempfile.TemporaryDirectory(prefix="oceanid-sweep-") as tmp:
        work = Path(tmp)
        if args.dataset == "fish4knowledge":
            paths, labels, groups, known = fish4knowledge_all()
        else:
            paths, labels, groups, known = synthetic_reef(work)
        idx = known_unknown_splits(labels, groups, known)
        print(
            f"{args.dataset}: {len(known)} known species, " + ", ".join(f"{k} {len(v)}" for k, v in idx.items()),
            flush=True,
        )
        for bb, freeze, size, loss, epochs, lr in itertools.product(
            args.backbones, args.freeze, args.sizes, args.losses, args.epochs, args.lrs
        ):
            backbone, weights = bb.split(":")
            config = TrainConfig(
                backbone=backbone,
                weights=weights,
                freeze=freeze,
                image_size=size,
                loss=loss,
                epochs=epochs,
                patience=epochs,
                lr=lr,
                batch_p=bp,
                batch_k=bk,
                device="cpu",
            )
            key = run_key(args.dataset, config)
            if key in load() and not args.force:
                print(f"skip (stored): {key}")
                continue
            with cpu_lock(args.lock) if args.lock else nullcontext():
                row = one_run(config, args.dataset, paths, labels, idx, work / key.replace("|", "_"))
            store(key, row)
            o = row["ood_test"]
            print(
                f"{key}: val F1 {row['val']['f1_macro']:.3f} | test top1 {row['test']['top1']:.3f} "
                f"F1 {row['test']['f1_macro']:.3f} | AUROC "
                + " ".join(f"{s} {o[s]['auroc']:.3f}" for s in o)
                + f" | ECE {row['calibration']['ece_test_uncalibrated']:.3f}->{row['calibration']['ece_test']:.3f}"
                f" | train {row['train_seconds']:.0f} s, {row['train_crops_s']:.0f} crops/s",
                flush=True,
            )


if __name__ == "__main__":
    main()
