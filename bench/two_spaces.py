"""Two vector spaces (issue 26): the tuned space, a frozen general space, and rules that decide with both.

    /work/shared/tools/cpujob -- .venv/bin/python -m bench.two_spaces cache --dataset fish4knowledge --fold 0
        (one training per fold, the shipped TrainConfig as bench/leave_species_out.py trains it; caches the
        tuned pooled features of every crop and, once per dataset, the frozen general features)
    .venv/bin/python -m bench.two_spaces evaluate --dataset fish4knowledge     (every rule, every cached fold)
    .venv/bin/python -m bench.two_spaces report                                  (tables from the stored JSON)

Folds, training and the tuned features are bench/leave_species_out.py's (same run key, same work folder
layout), so a fold trained by either is reused by both. The general space is the frozen ImageNet encoder
(EfficientNet-Lite0 at 96 / 128 / 160 px, Lite2 at 160 px on request), the same for every fold. Rules are in
:mod:`bench.two_space_rules`; results in bench/figures/two_spaces.json.
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
GENERAL = {"lite0-96": ("efficientnet_lite0", 96), "lite0-128": ("efficientnet_lite0", 128), "lite0-160": ("efficientnet_lite0", 160),
           "lite2-160": ("efficientnet_lite2", 160)}
log = logging.getLogger("two_spaces")


def fold_dir(work: Path, dataset: str, fold: int) -> Path:
    from bench.leave_species_out import candidate_config, run_key
    from embedder.train_config import TrainConfig

    config = candidate_config(TrainConfig().epochs, "centre", {})
    return work / run_key(dataset, fold, config).replace("|", "-"), config


def general_features(work: Path, dataset: str, paths, names) -> dict[str, np.ndarray]:
    """``name -> (n, 1280)`` unit pooled features of the frozen ImageNet encoders, cached per dataset."""
    from bench.leave_species_out import features
    from embedder.model import build_model

    out = {}
    folder = work / f"general-{dataset}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        backbone, size = GENERAL[name]
        model = build_model(backbone, weights="imagenet", image_size=size).eval()
        pooled, _ = features(folder, name, model, paths, "centre")
        out[name] = pooled
    return out


def cache(dataset: str, fold: int, work: Path, general: list[str]) -> None:
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
    p.add_argument("--general", nargs="*", default=["lite0-96", "lite0-128", "lite0-160"], choices=list(GENERAL),
                   help="general encoders to cache / evaluate (lite2-160: about twice Lite0's encoding time)")
    p.add_argument("--work", type=Path, default=WORK)
    p.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5])
    p.add_argument("--draws", type=int, default=5)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.step == "cache":
        cache(args.dataset, args.fold, args.work, args.general)
        return
    from bench.two_space_rules import evaluate_dataset, markdown

    if args.step == "report":
        for key, result in json.loads(FIGURES.read_text()).items():
            print(f"\n### {key}\n\n{markdown(result)}")
        return
    result = evaluate_dataset(args.dataset, args.folds, args.work, args.general, args.shots, args.draws, load_fold)
    result.update({"command": "python -m bench.two_spaces evaluate --dataset " + args.dataset,
                   "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine()})
    stored = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    stored[args.dataset] = result
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(stored, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
