"""Adding a species from a few examples: are its other crops named, and at what cost?

    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.few_shot --dataset fish4knowledge [--work DIR]
    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.few_shot --dataset synthetic

Trains the shipped default encoder (``TrainConfig()``) on the known species (the
splits of bench/train_sweep.py, ``bench.common.known_unknown_splits``: fish4knowledge's
15 most frequent species by track, the synthetic reef's 12 by frame), embeds every crop once, then adds each
held-out species in turn, as ``oceanid species add`` does: ``--shots`` support
crops from distinct tracks (frames) become its prototype and join the knn
scorer's training crops, and the threshold is calibrated on the known validation
crops (95% kept). For the knn scorer without and with ``few_shot`` (index/scoring/ood.py)
it reports, per added species:

- **named**: of its other crops (tracks not used as support), the fraction named it
  (accepted as known and its prototype the nearest);
- **false named**: of the other held-out species' crops (still unknown), the fraction
  named the added species; and of the known test crops, the fraction named it;
- **known kept**: the known test crops still accepted.

A trained model in ``--work`` is reused (delete it to retrain). Writes
bench/figures/few_shot.json and prints a markdown table.
"""

from __future__ import annotations

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
    known_unknown_splits,
    machine,
    store_figures,
    synthetic_reef,
    train_on,
    utc_now,
)
from index.scoring.ood import KnnScorer, calibrate
from index.scoring.prototypes import Prototypes

OUT = FIGURES / "few_shot.json"
log = logging.getLogger("few_shot")


def encoder(work: Path, paths, labels, idx) -> Path:
    from embedder.train_config import TrainConfig

    out = work / "model"
    if (out / "config.json").is_file():
        log.info("reusing the model in %s", out)
        return out
    _, seconds = train_on(TrainConfig(), paths, labels, idx["train"], idx["val"], out)
    log.info("trained the default encoder in %.0f s", seconds)
    return out


def embed(model_dir: Path, paths) -> np.ndarray:
    from embedder.model import load_model

    return embed_all(load_model(model_dir), paths)


def add_one(species: str, shots: int, vec, y, groups, idx, base: Prototypes, rng) -> dict | None:
    """Add ``species`` from ``shots`` crops of distinct tracks; score both knn variants."""
    held = np.concatenate([idx["unknown_val"], idx["unknown_test"]])
    mine = held[y[held] == species]
    tracks = np.unique(groups[mine])
    if tracks.size < shots + 1:  # support from distinct tracks, and at least one track left to name
        return None
    chosen = rng.choice(tracks, shots, replace=False)
    support = np.array([rng.choice(mine[groups[mine] == t]) for t in chosen])
    siblings = mine[~np.isin(groups[mine], chosen)]
    others = held[y[held] != species]
    train = np.concatenate([idx["train"], support])
    protos = base.with_class(species, vec[support])  # as `species add` does
    names = np.asarray(protos.names)
    row = {"species": species, "support": int(shots), "siblings": int(siblings.size)}
    for variant, few in (("knn", ()), ("knn few_shot", (species,))):
        scorer = KnnScorer(few_shot=few).fit(vec[train], y[train])
        threshold = calibrate(scorer.score(vec[idx["val"]]))

        def named(ix: np.ndarray, scorer=scorer, threshold=threshold) -> tuple[np.ndarray, np.ndarray]:
            accepted = scorer.score(vec[ix]) >= threshold
            return accepted & (names[protos.similarities(vec[ix]).argmax(1)] == species), accepted

        sib, sib_accepted = named(siblings)
        oth, _ = named(others)
        test, kept = named(idx["test"])
        row["top1"] = float((names[protos.similarities(vec[siblings]).argmax(1)] == species).mean())
        row[variant] = {
            "named": float(sib.mean()),
            "accepted": float(sib_accepted.mean()),
            "false_named_unknown": float(oth.mean()),
            "false_named_known": float(test.mean()),
            "known_kept": float(kept.mean()),
            "threshold": float(threshold),
        }
    return row


def main() -> None:
    p = bench_parser(__file__, __doc__)
    p.add_argument("--dataset", choices=["fish4knowledge", "synthetic"], default="fish4knowledge")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--work", type=Path, default=None, help="folder for the trained model (kept and reused)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    work = args.work or Path(tempfile.gettempdir()) / f"oceanid-few-shot-{args.dataset}"
    work.mkdir(parents=True, exist_ok=True)
    if args.dataset == "fish4knowledge":
        paths, labels, groups, known = fish4knowledge_all()
    else:
        paths, labels, groups, known = synthetic_reef(work)
    idx = known_unknown_splits(labels, groups, known)
    model = encoder(work, paths, labels, idx)
    t0 = time.perf_counter()
    vec = embed(model, paths)
    log.info("embedded %d crops in %.0f s", len(paths), time.perf_counter() - t0)
    y, g = np.array(labels), np.array(groups)
    rng = np.random.default_rng(args.seed)
    held = sorted(set(y[np.concatenate([idx["unknown_val"], idx["unknown_test"]])].tolist()))
    base = Prototypes.fit(vec[idx["train"]], y[idx["train"]])
    rows = [r for r in (add_one(s, args.shots, vec, y, g, idx, base, rng) for s in held) if r]
    result = {
        "dataset": args.dataset,
        "shots": args.shots,
        "seed": args.seed,
        "rows": rows,
        "command": command("few_shot"),
        "when": utc_now(),
        "machine": machine(),
    }
    store_figures(OUT, f"{args.dataset}|{args.shots}shot|seed{args.seed}", result)
    print(markdown(result))


def markdown(r: dict) -> str:
    lines = [
        f"`{r['command']}` ({r['when']}), {r['shots']} support crops per added species",
        "",
        "| added species | other crops | nearest prototype | knn: named | few_shot: named "
        "| knn: false named (unknown / known) | few_shot: false named (unknown / known) "
        "| known kept (knn / few_shot) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        a, b = row["knn"], row["knn few_shot"]
        lines.append(
            f"| {row['species']} | {row['siblings']} | {row['top1']:.2f} | {a['named']:.2f} | {b['named']:.2f} | "
            f"{a['false_named_unknown']:.3f} / {a['false_named_known']:.3f} | "
            f"{b['false_named_unknown']:.3f} / {b['false_named_known']:.3f} | "
            f"{a['known_kept']:.3f} / {b['known_kept']:.3f} |"
        )
    mean = lambda v, key: float(np.mean([row[v][key] for row in r["rows"]]))  # noqa: E731
    top1 = float(np.mean([row["top1"] for row in r["rows"]]))
    lines.append(
        f"| **mean** | | {top1:.2f} | {mean('knn', 'named'):.2f} | {mean('knn few_shot', 'named'):.2f} | "
        f"{mean('knn', 'false_named_unknown'):.3f} / {mean('knn', 'false_named_known'):.3f} | "
        f"{mean('knn few_shot', 'false_named_unknown'):.3f} / {mean('knn few_shot', 'false_named_known'):.3f} | "
        f"{mean('knn', 'known_kept'):.3f} / {mean('knn few_shot', 'known_kept'):.3f} |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
