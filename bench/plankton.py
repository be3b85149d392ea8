"""Plankton (issue 31): labels at their rank in training and answers, and class priors as a decision.

    /work/shared/tools/cpujob -- .venv/bin/python -m bench.plankton run --dataset plankton --seed 0 --label-rank flat
    ... run --dataset plankton --seed 0 --label-rank subtree      (and --seed 1; fish4knowledge: --dataset fish)
    .venv/bin/python -m bench.plankton analyse        (every finished run: the priors sweep, post-hoc, seconds)
    .venv/bin/python -m bench.plankton report         (the tables from bench/figures/plankton.json)

``run`` is the CLI as a new user types it, in a fresh home under ``--work`` (default /tmp/pt31):
plankton ``ingest folders /work/shared/data/pwssc_plankton``, ``taxa import
bench/lineages/pwssc_plankton.csv``, ``split --classes 21 --holdout rest --seed S`` (the split's seeded
group order: seeds 0 and 1 are the two hash-split folds); fish4knowledge ``ingest folders ...
--group-pattern 'fish_(\\d+)_'``, ``split --classes 15 --holdout rest --seed S``; then ``train
--model L --label-rank L`` (every other option the default), ``embed``, ``index build``, ``evaluate --json``.

``analyse`` reads each finished home's stored vectors and decision and, for the class priors of the
training crops at tau in {0, 0.5, 0.75, 1.0} (``index.scoring.priors``: answer = argmax cosine / T +
tau log pi, T the stored temperature), grades the known validation and test crops: strict top-1, top-1
at the label's rank (``index.metrics.label_rank``, the catalog's lineages), F1-macro, per-class
precision / recall, and the count error per class: the mean absolute relative error of raw
classify-and-count (predicted crops per class against true crops per class, over the known test crops,
classes with >= 20 test crops). Unknown AUROC is graded as ``evaluate`` grades it (the stored decision
scorer, known test crops against the held-out crops the scorer was not chosen on); priors do not change it
(the scorer reads vectors). ``--home KEY=HOME=MODEL`` adds a home built elsewhere with the same commands.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from bench.common import CLI, FIGURES, FISH4K, PLANKTON, REPO, bench_parser, cli_env, load_figures, store_figures

OUT = FIGURES / "plankton.json"
WORK = Path("/tmp/pt31")
TAUS = (0.0, 0.5, 0.75, 1.0)
MIN_COUNT_CROPS = 20


def _oc(home: Path, *args: str, out: Path | None = None) -> None:
    cmd = [*CLI, "--home", str(home), *args]
    with open(out, "w") if out else open("/dev/null", "w") as fh:
        subprocess.run(cmd, check=True, cwd=REPO, env=cli_env(), stdout=fh)


def run(dataset: str, seed: int, label_rank: str, work: Path, epochs: int | None = None) -> Path:
    """One fresh home through the CLI (module doc); returns it. ``epochs``: a reduced training budget
    (``train --epochs N``; the home's name ends ``-eN``); None: the CLI's default."""
    name = f"{dataset}-s{seed}-{label_rank}" + (f"-e{epochs}" if epochs else "")
    home = work / name
    if (home / ".done").is_file():
        return home
    if dataset == "plankton":
        _oc(home, "ingest", "folders", str(PLANKTON))
        _oc(home, "taxa", "import", str(REPO / "bench" / "lineages" / "pwssc_plankton.csv"))
        _oc(home, "split", "--classes", "21", "--holdout", "rest", "--seed", str(seed))
    else:
        _oc(home, "ingest", "folders", str(FISH4K), "--group-pattern", r"fish_(\d+)_")
        _oc(home, "split", "--classes", "15", "--holdout", "rest", "--seed", str(seed))
    budget = ("--epochs", str(epochs)) if epochs else ()
    _oc(
        home,
        "train",
        "--model",
        label_rank,
        "--label-rank",
        label_rank,
        *budget,
        "--json",
        out=work / f"{name}.train.json",
    )
    _oc(home, "embed", "--model", label_rank, "--json", out=work / f"{name}.embed.json")
    _oc(home, "index", "build", "--model", label_rank, "--json", out=work / f"{name}.build.json")
    _oc(home, "evaluate", "--model", label_rank, "--json", out=work / f"{name}.eval.json")
    (home / ".done").touch()
    return home


def count_error(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, min_crops: int = MIN_COUNT_CROPS) -> dict:
    """Mean absolute relative error of classify-and-count over the classes with >= ``min_crops`` true crops,
    and the per-class (true, predicted) counts."""
    true = np.bincount(y_true, minlength=n_classes)
    pred = np.bincount(y_pred, minlength=n_classes)
    keep = true >= min_crops
    rel = np.abs(pred[keep] - true[keep]) / true[keep]
    return {"mare": float(rel.mean()) if keep.any() else None, "classes": int(keep.sum()), "true": true, "pred": pred}


def grade(sims: np.ndarray, labels: np.ndarray, names: list[str], temperature, priors, members) -> dict:
    """The figures of one set of crops at one set of priors (module doc)."""
    from sklearn.metrics import precision_recall_fscore_support

    from index.metrics.label_rank import label_rank_report
    from index.scoring.priors import adjusted_logits

    column = {n: i for i, n in enumerate(names)}
    y = np.asarray([column[str(v)] for v in labels])
    pred = adjusted_logits(sims, names, temperature, priors).argmax(axis=1)
    r = label_rank_report(y, pred, names, members)
    p, rc, f, s = precision_recall_fscore_support(y, pred, labels=np.arange(len(names)), zero_division=0)
    counts = count_error(y, pred, len(names))
    return {
        "n": int(len(y)),
        "top1": r.top1_strict,
        "top1_at_label_rank": r.top1_at_label_rank,
        "f1_macro": float(f.mean()),
        "precision_macro": float(p.mean()),
        "recall_macro": float(rc.mean()),
        "count_mare": counts["mare"],
        "count_classes": counts["classes"],
        "kinds": r.kinds,
        "per_class": {
            n: {
                "precision": float(p[i]),
                "recall": float(rc[i]),
                "support": int(s[i]),
                "predicted": int(counts["pred"][i]),
                "at_label_rank": (
                    (r.per_class[n]["exact"] + r.per_class[n]["subtree"]) / int(s[i]) if n in r.per_class else None
                ),
            }
            for i, n in enumerate(names)
        },
    }


def unknown_auroc(ws, engine, model: str, known_test: np.ndarray) -> tuple[float | None, str]:
    """AUROC of the engine's decision scorer: known test crops against the held-out crops the scorer
    was not chosen on (as ``evaluate`` grades it)."""
    from app.workspace.decisions import choice_rows
    from index.catalog.embeddings import group_keys, load_embeddings
    from index.metrics.classification import ood_metrics
    from index.records import HOLDOUT

    held_ids, held_v, _ = load_embeddings(ws.catalog, model, (HOLDOUT,), with_labels=True)
    if not len(held_v):
        return None, engine.scorer
    graded = (
        ~choice_rows(group_keys(ws.catalog, held_ids))
        if engine.choice is not None and engine.choice.n_unknown_val
        else np.ones(len(held_v), dtype=bool)
    )
    scorer = engine.scorers[engine.scorer]
    got = ood_metrics(scorer.score(known_test), scorer.score(held_v[graded]), engine.thresholds[engine.scorer])
    return got.auroc, engine.scorer


def analyse_home(home: Path, model: str, eval_json: Path | None) -> dict:
    """The priors sweep over one finished home (module doc)."""
    from app.workspace import Workspace
    from app.workspace.decisions import trained_only
    from index.catalog.embeddings import load_embeddings, load_prototypes
    from index.catalog.taxa import tree
    from index.metrics.label_rank import subtree_matrix, subtrees
    from index.records import TEST, TRAIN, VAL
    from index.scoring.priors import fit_priors

    ws = Workspace(home)
    catalog = ws.catalog
    engine = ws.engine(model)
    prototypes, origins = load_prototypes(catalog, model)
    base = trained_only(prototypes, origins)
    names = list(base.names)
    lineages = tree(catalog)
    members = subtree_matrix(names, lineages)
    _, _, train_l = load_embeddings(catalog, model, (TRAIN,), with_labels=True)
    temperature = engine.calibration.temperature if engine.calibration is not None else None
    out: dict = {
        "classes": len(names),
        "subtrees": subtrees(names, lineages),
        "temperature": temperature,
        "train_prior": {n: float(np.mean(train_l == n)) for n in names},
        "val": {},
        "test": {},
    }
    sets = {}
    for split, key in ((VAL, "val"), (TEST, "test")):
        _, v, lab = load_embeddings(catalog, model, (split,), with_labels=True)
        keep = np.isin(lab, names)
        sets[key] = (base.similarities(v[keep]), lab[keep].astype(str), v[keep])
    for tau in TAUS:
        priors = fit_priors(train_l, names, "train", tau)
        for key, (sims, lab, _) in sets.items():
            out[key][str(tau)] = grade(sims, lab, names, temperature, priors, members)
    out["unknown_auroc"], out["unknown_scorer"] = unknown_auroc(ws, engine, model, sets["test"][2])
    if eval_json is not None and eval_json.is_file():
        ev = json.loads(eval_json.read_text())
        scorer = ev.get("ood_decision_scorer")
        out["evaluate"] = {
            "unknown_auroc": ev["ood"][scorer]["auroc"] if scorer in (ev.get("ood") or {}) else None,
            "top1": ev["classification"]["top1"],
            "top1_at_label_rank": ev["classification"].get("top1_at_label_rank"),
            "f1_macro": ev["classification"]["f1_macro"],
            "priors": ev["classification"].get("priors"),
        }
    train_json = eval_json.with_name(eval_json.name.replace(".eval.", ".train.")) if eval_json else None
    if train_json is not None and train_json.is_file():
        t = json.loads(train_json.read_text())
        out["training"] = {k: t.get(k) for k in ("best_epoch", "epochs_run", "seconds", "val", "wise_alpha")}
    return out


def analyse(work: Path, extra: list[str]) -> None:
    """Every finished home under ``work`` (named ``<dataset>-s<seed>-<label rank>``, model = label rank),
    and each ``extra`` ``KEY=HOME=MODEL`` (a home built elsewhere with the same commands)."""
    runs = [
        (h.name.replace("-", "|"), h, h.name.split("-")[2], work / f"{h.name}.eval.json")
        for h in sorted(p for p in work.iterdir() if (p / ".done").is_file())
    ]
    for spec in extra:
        key, home, model = spec.split("=")
        runs.append((key, Path(home), model, None))
    for key, home, model, eval_json in runs:
        try:
            got = analyse_home(home, model, eval_json)
        except Exception as exc:  # a home still being built elsewhere, or one that failed: say so, go on
            print(f"{key}: not analysed ({type(exc).__name__}: {exc})")
            continue
        got["home"] = str(home)
        store_figures(OUT, key, got)
        print(key, "stored")
    report()


def report() -> None:
    """Markdown tables (bench/RESULTS.md) from the stored figures: one row per run, split and tau."""
    stored = load_figures(OUT)
    print(
        "| run | split | tau | strict top-1 | top-1 at label rank | F1-macro | P macro | R macro "
        "| count error (classes) | unknown AUROC |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, got in stored.items():
        for split in ("val", "test"):
            for tau, g in got[split].items():
                auroc = got.get("unknown_auroc")
                count = "n/a" if g["count_mare"] is None else f"{g['count_mare']:.3f} ({g['count_classes']})"
                print(
                    f"| {key} | {split} | {tau} | {g['top1']:.3f} | {g['top1_at_label_rank']:.3f} | "
                    f"{g['f1_macro']:.3f} | {g['precision_macro']:.3f} | {g['recall_macro']:.3f} | {count} | "
                    f"{'n/a' if auroc is None else f'{auroc:.3f}'} |"
                )


def main() -> None:
    p = bench_parser(__file__, __doc__)
    p.add_argument("step", choices=["run", "analyse", "report"])
    p.add_argument("--dataset", choices=["plankton", "fish"], default="plankton")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label-rank", choices=["flat", "subtree"], default="flat")
    p.add_argument("--work", type=Path, default=WORK)
    p.add_argument("--epochs", type=int, default=None, help="run: train --epochs N (default: the CLI's)")
    p.add_argument(
        "--home",
        action="append",
        default=[],
        metavar="KEY=HOME=MODEL",
        help="analyse: also this home (e.g. plankton|s0|flat=/tmp/counts-job/home-plankton=MODEL)",
    )
    args = p.parse_args()
    if args.step == "run":
        print(run(args.dataset, args.seed, args.label_rank, args.work, args.epochs))
    elif args.step == "analyse":
        analyse(args.work, args.home)
    else:
        report()


if __name__ == "__main__":
    main()
