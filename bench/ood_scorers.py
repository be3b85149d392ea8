"""The whole pipeline on the synthetic reef and on fish4knowledge, scored by `oceanid evaluate`.

Chooses the default OOD scorer (best mean AUROC over both data sets) and the
number of prototype sub-centres. fish4knowledge: the 15 most frequent species
are known, the other 8 held out; tracks never cross splits.

Every scorer of index.scoring.ood.SCORERS (relative_mahalanobis included): AUROC,
FPR@95 and, at the shipped operating point (threshold accepting 95% of the
known validation crops), known-kept / unknown-flagged on the test crops.
Per-configuration OOD figures of the training sweep come from
bench/train_sweep.py (same scorers, same splits for every run).

Run: .venv/bin/python -m bench.ood_scorers [--epochs N]
Writes bench/results/ood_scorers.json and the tracked copy bench/figures/ood_scorers.json.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import FIGURES, FISH4K, bench_parser, table, write_result


def run(name: str, ws, ingest, split, config) -> dict:
    t0 = time.perf_counter()
    ingest(ws)
    ws.split(split)
    trained = ws.train(config, model="bench", progress=False)
    ws.embed("bench", progress=False)
    ws.index_build("bench")
    s = ws.evaluate(model="bench")
    return {"dataset": name, "seconds": time.perf_counter() - t0, "train_seconds": trained.seconds, "eval": s.to_dict()}


def centres(ws, n_centres: int) -> float:
    """Test top-1 with n prototype sub-centres per species."""
    import numpy as np

    from index.catalog.embeddings import load_embeddings
    from index.scoring.prototypes import Prototypes

    _, tv, tl = load_embeddings(ws.catalog, "bench", ("train",), with_labels=True)
    _, sv, sl = load_embeddings(ws.catalog, "bench", ("test",), with_labels=True)
    protos = Prototypes.fit(tv, tl, n_centres=n_centres)
    keep = np.isin(sl, protos.names)
    pred = np.asarray(protos.names)[protos.similarities(sv[keep]).argmax(1)]
    return float((pred == sl[keep]).mean())


def main() -> None:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    args = parser.parse_args()
    from app.workspace import Workspace
    from embedder.train_config import TrainConfig
    from index.catalog.splits import SplitConfig

    config = TrainConfig() if args.epochs is None else TrainConfig(epochs=args.epochs)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "reef")
        runs.append((run("synthetic", ws, lambda w: w.ingest_synthetic(), SplitConfig(), config), ws))
        if FISH4K.is_dir():
            ws = Workspace(Path(tmp) / "f4k")
            runs.append(
                (
                    run(
                        "fish4knowledge",
                        ws,
                        lambda w: w.ingest_folders(FISH4K, group_pattern=r"fish_(\d+)_"),
                        SplitConfig(classes=15, holdout=("rest",)),
                        config,
                    ),
                    ws,
                )
            )
        rows, centre_rows = [], []
        for r, ws in runs:
            s = r["eval"]
            for scorer, o in s["ood"].items():
                rows.append(
                    {
                        "dataset": r["dataset"],
                        "scorer": scorer,
                        "auroc": o["auroc"],
                        "fpr95": o["fpr_at_95_tpr"],
                        "aupr": o["aupr_out"],
                        "known_kept": o["known_accuracy"],
                        "unknown_flagged": o["unknown_accuracy"],
                    }
                )
            centre_rows += [{"dataset": r["dataset"], "sub_centres": k, "test_top1": centres(ws, k)} for k in (1, 2, 3)]
    summary = [
        {
            "dataset": r["dataset"],
            "top1": r["eval"]["classification"]["top1"],
            "f1_macro": r["eval"]["classification"]["f1_macro"],
            "recall_at_1": r["eval"]["retrieval"]["recall_at_1"],
            "map_at_r": r["eval"]["retrieval"]["map_at_r"],
            "few_shot_5_recall": r["eval"]["few_shot"].get(5, {}).get("recall"),
            "train_s": r["train_seconds"],
            "total_s": r["seconds"],
        }
        for r, _ in runs
    ]
    by_scorer: dict[str, list[float]] = {}
    for row in rows:
        by_scorer.setdefault(row["scorer"], []).append(row["auroc"])
    best = max(by_scorer, key=lambda k: sum(by_scorer[k]) / len(by_scorer[k]))
    print(table(summary))
    print()
    print(table(rows))
    print()
    print(table(centre_rows))
    print(f"\nbest mean AUROC: {best}")
    path = write_result(
        "ood_scorers",
        {
            "config": config.to_dict(),
            "summary": summary,
            "ood": rows,
            "sub_centres": centre_rows,
            "best_scorer": best,
            "evaluations": [r["eval"] for r, _ in runs],
        },
    )
    tracked = FIGURES / path.name
    tracked.parent.mkdir(exist_ok=True)
    tracked.write_text(path.read_text())


if __name__ == "__main__":
    main()
