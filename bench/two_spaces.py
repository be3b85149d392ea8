"""Two vector spaces (issue 26): the tuned space, a frozen general space, and rules that decide with both.

    /work/shared/tools/cpujob -- .venv/bin/python -m bench.two_spaces cache --dataset fish4knowledge --fold 0
        (one training per fold; caches the tuned pooled features of every crop, once per dataset the frozen
        general features, then evaluates every rule of bench/two_space_rules.py on the fold into its folder)
    .venv/bin/python -m bench.two_spaces evaluate --dataset fish4knowledge     (assemble the cached folds)
    cpujob -- .venv/bin/python -m bench.two_spaces evaluate --folds 0 1 [--recompute]
        (folds asked by number: the rule rows their stored rules.json lacks are computed into it, all with
        --recompute; same support draws, so new rows stay paired with the stored ones)
    .venv/bin/python -m bench.two_spaces report                                  (tables from the stored JSON)

Folds and training are bench/leave_species_out.py's (its fold split, TrainConfig and run key), at
:data:`EPOCHS` epochs. The general space is the frozen ImageNet encoder (EfficientNet-Lite0 at 96 / 160 px by
default; 128 px and Lite2 at 160 px on request), the same for every fold. Rules: bench/two_space_rules.py;
results: bench/figures/two_spaces.json. Work folder: ``--work`` (default /tmp/oceanid-two-spaces).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import machine

WORK = Path(tempfile.gettempdir()) / "oceanid-two-spaces"
FIGURES = Path(__file__).resolve().parent / "figures" / "two_spaces.json"
#: general encoders: name -> (timm backbone, input side)
GENERAL = {
    "lite0-96": ("efficientnet_lite0", 96),
    "lite0-128": ("efficientnet_lite0", 128),
    "lite0-160": ("efficientnet_lite0", 160),
    "lite2-160": ("efficientnet_lite2", 160),
}
log = logging.getLogger("two_spaces")


#: training epochs of a fold: the shipped TrainConfig trains 8; 5 (0.6x the time, bench/RESULTS.md's
#: "128 px, 5 epochs" rows) let four folds fit the shared queue on 2026-12-06
EPOCHS = 5


def fold_dir(work: Path, dataset: str, fold: int, epochs: int = EPOCHS) -> Path:
    from bench.leave_species_out import candidate_config, run_key

    config = candidate_config(epochs, "centre", {})
    return work / run_key(dataset, fold, config).replace("|", "-"), config


def general_features(work: Path, dataset: str, paths, names) -> dict[str, np.ndarray]:
    """``name -> (n, 1280)`` unit pooled features of the frozen ImageNet encoders, cached per dataset."""
    from bench.leave_species_out import features
    from embedder.model import build_model

    out = {}
    folder = work / f"general-{dataset}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        cached = folder / f"feat-{name}-centre.npz"
        if cached.is_file():
            out[name] = np.load(cached)["pooled"]
            continue
        backbone, size = GENERAL[name]
        model = build_model(backbone, weights="imagenet", image_size=size).eval()
        pooled, _ = features(folder, name, model, paths, "centre")
        out[name] = pooled
    return out


def cache(dataset: str, fold: int, work: Path, general: list[str], shots=(1, 3, 5), draws: int = 5) -> None:
    from bench.leave_species_out import features, fold_split, train_fold
    from embedder.model import load_model

    folder, config = fold_dir(work, dataset, fold)
    folder.mkdir(parents=True, exist_ok=True)
    paths, y, g, added, known, idx = fold_split(dataset, fold)
    model_dir, meta = train_fold(folder, paths, y, idx, config)
    t0 = time.perf_counter()
    features(folder, "ft", load_model(model_dir), paths, "centre")
    meta["tuned_feature_seconds"] = round(time.perf_counter() - t0, 1)
    (folder / "train.json").write_text(json.dumps(meta, indent=2))
    general_features(work, dataset, paths, general)
    rules(dataset, fold, work, general, shots, draws)


def rules(
    dataset: str,
    fold: int,
    work: Path,
    general: list[str],
    shots=(1, 3, 5),
    draws: int = 5,
    recompute: bool = True,
) -> dict | None:
    """The fold's rule figures (bench.two_space_rules.evaluate_fold), stored in its folder; None if not cached.

    ``recompute=False`` keeps the rows a stored rules.json has (same shots, draws and general spaces) and
    computes only the rows it lacks, with the same support draws (seeded per shot count), into it."""
    from bench.two_space_rules import evaluate_fold, fold_rules

    got = load_fold(dataset, fold, work, general)
    if got is None:
        return None
    split, spaces, meta = got
    folder, _ = fold_dir(work, dataset, fold)
    head = classifier_head(folder, meta)
    path = folder / "rules.json"
    have = [n for n in general if n in spaces]
    stored = json.loads(path.read_text()) if path.is_file() and not recompute else None
    if stored is not None and (stored["shots"], stored["draws"], stored["general"]) != (list(shots), draws, have):
        log.info("fold %d: stored rules.json was made with other shots / draws / spaces: recomputing", fold)
        stored = None
    only = None if stored is None else set(fold_rules(have)) - set(stored["table"])
    if only is not None and not only:
        return stored
    t0 = time.perf_counter()
    result = evaluate_fold(
        split,
        spaces,
        general,
        list(shots),
        draws,
        only=only,
        grid=None if stored is None else stored["weight_grid"],
        head=head,
    )
    result["vim_head"] = (
        "no classifier for the features (none cached, or the best epoch is not the last)"
        if head is None
        else f"classifier of the last epoch ({meta.get('epochs')}), features of the best ({meta.get('best_epoch')})"
    )
    seconds = round(time.perf_counter() - t0, 1)
    if stored is not None:
        result["table"] = {**stored["table"], **result["table"]}
        result["rules_seconds"] = stored.get("rules_seconds")
        result["added_rows_seconds"] = seconds
        log.info("fold %d: %d rows added to the stored rules in %.0f s", fold, len(only), seconds)
    else:
        result["rules_seconds"] = seconds
        log.info("fold %d rules in %.0f s", fold, seconds)
    result["training"] = meta
    path.write_text(json.dumps(result))
    return result


def classifier_head(folder: Path, meta: dict | None = None):
    """``(head features (n, 128), (W, b))``: the fold model's head vectors of every crop and its softmax
    classifier (kept in the training's resume state, ``model/last/state.safetensors``), or None.

    The resume state is the last epoch's, the saved model the best epoch's: when they differ (``meta``'s
    ``best_epoch`` < ``epochs``) the classifier does not belong to the features, and there is none."""
    state = folder / "model" / "last" / "state.safetensors"
    cached = folder / "feat-ft-centre.npz"
    if not state.is_file() or not cached.is_file():
        return None
    if meta is not None and meta.get("best_epoch") != meta.get("epochs"):
        log.info(
            "%s: best epoch %s of %s: the last epoch's classifier is not the features'",
            folder.name,
            meta.get("best_epoch"),
            meta.get("epochs"),
        )
        return None
    from safetensors import safe_open

    with safe_open(str(state), "np") as f:
        if "loss.classifier.weight" not in f.keys():  # noqa: SIM118 - safe_open has no __contains__
            return None
        weight, bias = f.get_tensor("loss.classifier.weight"), f.get_tensor("loss.classifier.bias")
    return np.load(cached)["head"], (weight.astype(np.float64), bias.astype(np.float64))


def load_fold(dataset: str, fold: int, work: Path, general: list[str]):
    """(split, spaces): ``spaces`` maps "tuned" and each general name to (n, d) unit features."""
    from bench.leave_species_out import fold_split

    folder, _ = fold_dir(work, dataset, fold)
    cached = folder / "feat-ft-centre.npz"
    if not cached.is_file():
        return None
    split = fold_split(dataset, fold)
    spaces = {"tuned": np.load(cached)["pooled"]}
    have = [n for n in general if (work / f"general-{dataset}" / f"feat-{n}-centre.npz").is_file()]
    spaces.update(general_features(work, dataset, split[0], have))  # only what a cache job stored
    meta = json.loads((folder / "train.json").read_text())
    return split, spaces, meta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", choices=["cache", "evaluate", "report"])
    p.add_argument("--dataset", choices=["fish4knowledge", "plankton"], default="fish4knowledge")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--folds", type=int, nargs="*", default=None, help="evaluate: these folds (default: all cached)")
    p.add_argument(
        "--general",
        nargs="*",
        default=["lite0-96", "lite0-160"],
        choices=list(GENERAL),
        help="general encoders to cache / evaluate (lite2-160: about twice Lite0's encoding time)",
    )
    p.add_argument("--work", type=Path, default=WORK)
    p.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5])
    p.add_argument("--draws", type=int, default=5)
    p.add_argument(
        "--recompute",
        action="store_true",
        help="evaluate --folds N: recompute every rule of those folds (without it: only the rows their stored "
        "rules.json lacks, e.g. rules added since, with the same support draws)",
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.step == "cache":
        cache(args.dataset, args.fold, args.work, args.general, args.shots, args.draws)
        return
    from bench.two_space_rules import assemble, markdown

    if args.step == "report":
        for key, result in json.loads(FIGURES.read_text()).items():
            print(f"\n### {key}\n\n{markdown(result)}")
        return
    per_fold = {}
    for fold in args.folds if args.folds is not None else range(8):
        folder, _ = fold_dir(args.work, args.dataset, fold)
        stored = folder / "rules.json"
        if args.folds is not None:  # asked for by number: its missing rows (all with --recompute) computed now
            got = rules(args.dataset, fold, args.work, args.general, args.shots, args.draws, args.recompute)
            if got is not None:
                per_fold[fold] = got
        elif stored.is_file():
            per_fold[fold] = json.loads(stored.read_text())
    if not per_fold:
        raise SystemExit("no fold is cached yet: run the cache step first")
    result = assemble(args.dataset, per_fold)
    result.update(
        {
            "command": "python -m bench.two_spaces evaluate --dataset " + args.dataset,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(),
        }
    )
    stored = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    stored[args.dataset] = result
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(stored, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
