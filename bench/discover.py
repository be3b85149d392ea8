"""Discover (issue 29): how well HDBSCAN groups the crops answered unknown into species, and how fast.

    /work/shared/tools/cpujob -- .venv/bin/python -m bench.discover folds --dataset fish4knowledge
        (every fold whose features bench/two_spaces.py cached under /tmp/oceanid-two-spaces)
    /work/shared/tools/cpujob -- .venv/bin/python -m bench.discover scale --sizes 10000 100000
    .venv/bin/python -m bench.discover report        (the tables from bench/figures/discover.json)

**Folds** (bench/leave_species_out.py's ``fold_split``; features cached by bench/two_spaces.py): the crops
judged are the known test crops, the held-out frequent species ("added") and the rare species never trained
on ("unknown"). The unknown decision is the product's: the tuned space's knn scorer over the trained species,
threshold at 95% of the known validation crops (``index.scoring.ood.calibrate``). The crops it answers
unknown are clustered (``index.scoring.clustering.cluster_vectors``) in each space: tuned, a frozen general
space, or their fusion (``index.scoring.fusion.Fusion`` at the product's weight 0.3). Reported per space,
``min_cluster_size`` and cluster selection:

- purity: mean over clusters of the share of its crops from its majority species;
- coverage: share of the held-out species' unknown-answered crops placed in some cluster;
- ARI (scikit-learn) against the true species over the clustered crops; clusters vs held-out species present;
- known crops in clusters (share of clustered crops from trained species);
- one click names: each cluster named by the majority species of its exemplars alone, added from those
  exemplars (as ``discover name`` does); then the share of each added species' crops (all of them, the
  support included, for every variant) named right under the knn decision with the added species as
  few-shot classes, mean over species; against the same figure with 5 support crops from 5 random tracks
  (``species add`` with 5 hand-picked crops, 5 draws);
  also with every member of the cluster as support (``discover name --crops`` with the whole cluster).

**Scale**: synthetic unit vectors (128-d, 1 cluster per 100 vectors plus 10% scattered), each size in its own
process: seconds and peak memory of ``cluster_vectors``, with every dimension and with 32 principal components.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench.common import FIGURES, command, load_figures, machine, utc_now

OUT = FIGURES / "discover.json"
SIZES = (3, 5, 8, 12)
SELECTIONS = ("eom", "leaf")
FUSION_WEIGHT = 0.3  # app/workspace/spaces.py's FUSION_WEIGHT
log = logging.getLogger("discover")


# -- quality on the leave-species-out folds ------------------------------------------------------------


def unknown_pool(v: np.ndarray, y: np.ndarray, idx: dict) -> tuple[np.ndarray, float, object]:
    """The judged crops (known test + held-out) the tuned space answers unknown; the threshold and scorer."""
    from index.scoring.ood import KnnScorer, calibrate

    scorer = KnnScorer().fit(v[idx["train"]], y[idx["train"]])
    threshold = calibrate(scorer.score(v[idx["val"]]))
    judged = np.concatenate([idx["test"], idx["added"], idx["unknown"]])
    return judged[scorer.score(v[judged]) < threshold], threshold, scorer


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    found = [c for c in np.unique(labels) if c >= 0]
    if not found:
        return float("nan")
    return float(
        np.mean([Counter(truth[labels == c].tolist()).most_common(1)[0][1] / (labels == c).sum() for c in found])
    )


def named_share(v, y, idx, support: dict[str, np.ndarray], threshold: float, added) -> float:
    """Mean over ``added`` species of the share of all their crops (support included) named right: nearest prototype
    (trained + support classes), accepted by the knn scorer with the support classes as few-shot classes."""
    from index.scoring.ood import KnnScorer
    from index.scoring.prototypes import Prototypes

    train = idx["train"]
    protos = Prototypes.fit(v[train], y[train])
    new = [n for n, ix in support.items() if len(ix) and n not in protos.names]  # a known species: not added
    rows, labels = [train], [y[train]]
    for name in new:
        protos = protos.with_class(name, v[support[name]])
        rows.append(support[name])
        labels.append(np.full(len(support[name]), name, dtype=object))
    fitted = np.concatenate(rows)
    scorer = KnnScorer(few_shot=new).fit(
        v[fitted], np.concatenate(labels).astype(y.dtype if y.dtype != object else object)
    )
    names = np.asarray(protos.names, dtype=object)
    shares = []
    for species in added:
        mine = idx["added"][y[idx["added"]] == species]
        if mine.size == 0:
            continue
        pred = names[protos.owners[(v[mine] @ protos.vectors.T).argmax(1)]]
        ok = scorer.score(v[mine]) >= threshold
        shares.append(float(np.mean(ok & (pred == species))))
    return float(np.mean(shares)) if shares else 0.0


def five_shot(v, y, g, idx, added, threshold, draws=5, shots=5) -> float:
    """The ``species add`` baseline: ``shots`` crops from distinct tracks per added species, mean of ``draws``."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(draws):
        support = {}
        for species in added:
            mine = idx["added"][y[idx["added"]] == species]
            tracks = np.unique(g[mine])
            chosen = rng.choice(tracks, min(shots, len(tracks)), replace=False)
            support[species] = np.array([rng.choice(mine[g[mine] == t]) for t in chosen])
        out.append(named_share(v, y, idx, support, threshold, added))
    return float(np.mean(out))


def evaluate_clusters(space_vectors, tuned, y, idx, pool, added, threshold, params, groups=None) -> dict:
    """Cluster ``pool`` in ``space_vectors`` and grade it (see the module docstring)."""
    from sklearn.metrics import adjusted_rand_score

    from index.scoring.clustering import cluster_vectors

    t0 = time.perf_counter()
    got = cluster_vectors(space_vectors[pool], params, None if groups is None else groups[pool])
    seconds = time.perf_counter() - t0
    truth = y[pool]
    held = np.isin(pool, np.concatenate([idx["added"], idx["unknown"]]))
    inside = got.labels >= 0
    present = sorted({s for s in truth[held].tolist() if (truth[held] == s).sum() >= params.min_cluster_size})
    support: dict[str, list] = {}
    whole: dict[str, list] = {}  # the same names, added from every member of the cluster (`--crops` all)
    for c in range(got.count):
        ex = pool[got.exemplars[c]]
        majority = Counter(y[ex].tolist()).most_common(1)[0][0]
        support.setdefault(majority, []).extend(ex.tolist())
        whole.setdefault(majority, []).extend(pool[got.labels == c].tolist())
    support_ix = {k: np.asarray(sorted(set(v)), dtype=np.int64) for k, v in support.items()}
    whole_ix = {k: np.asarray(sorted(set(v)), dtype=np.int64) for k, v in whole.items()}
    return {
        "clusters": int(got.count),
        "held_out_species_present": len(present),
        "unknown_crops": int(len(pool)),
        "purity": purity(got.labels, truth),
        "coverage": float(inside[held].mean()) if held.any() else float("nan"),
        "ari": float(adjusted_rand_score(truth[inside], got.labels[inside])) if inside.sum() > 1 else float("nan"),
        "known_in_clusters": int((inside & ~held).sum()),
        "known_share_of_clustered": float((inside & ~held).sum() / max(inside.sum(), 1)),
        "one_click_named": named_share(tuned, y, idx, support_ix, threshold, added),
        "one_click_named_all_members": named_share(tuned, y, idx, whole_ix, threshold, added),
        "added_species_named_by_a_cluster": int(sum(1 for s in added if s in support_ix)),
        "seconds": round(seconds, 3),
    }


def fold_figures(dataset: str, fold: int, work: Path, general: list[str], sizes, selections, dims) -> dict | None:
    from bench.two_spaces import load_fold
    from index.scoring.clustering import ClusterParams
    from index.scoring.fusion import Fusion

    got = load_fold(dataset, fold, work, general)
    if got is None:
        return None
    (paths, y, g, added, known, idx), spaces, _ = got
    y = np.asarray(y, dtype=object)
    unit = {k: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32) for k, v in spaces.items()}
    tuned = unit["tuned"]
    pool, threshold, _ = unknown_pool(tuned, y, idx)
    reps = {"tuned": tuned}
    for name in general:
        if name in unit:
            reps[f"general {name}"] = unit[name]
            fusion = Fusion.fit(tuned[idx["train"]], unit[name][idx["train"]], FUSION_WEIGHT)
            reps[f"fused {name}"] = fusion.fuse(tuned, unit[name])
    rows = {}
    for space, vectors in reps.items():
        for size in sizes:
            for selection in selections:
                for kept in dims:
                    params = ClusterParams(min_cluster_size=size, selection=selection, dims=kept)
                    rows[f"{space} | mcs={size} | {selection} | dims={kept or 'all'}"] = {
                        "space": space,
                        "min_cluster_size": size,
                        "selection": selection,
                        "dims": kept,
                        **evaluate_clusters(vectors, tuned, y, idx, pool, added, threshold, params, np.asarray(g)),
                    }
                log.info("fold %d %s mcs=%d %s done", fold, space, size, selection)
    held = np.concatenate([idx["added"], idx["unknown"]])
    return {
        "added": list(added),
        "n": {k: int(len(v)) for k, v in idx.items()},
        "unknown_answered": int(len(pool)),
        "held_out_answered_unknown": float(np.isin(held, pool).mean()),
        "known_test_answered_unknown": float(np.isin(idx["test"], pool).mean()),
        "five_shot_named": five_shot(tuned, y, g, idx, added, threshold),
        "rows": rows,
    }


def folds(args) -> None:
    from bench.two_spaces import WORK

    out = args.out
    stored = load_figures(out)
    key = args.dataset
    entry = stored.get(key, {"folds": {}})
    for fold in args.folds:
        work = Path(args.work or WORK)
        result = fold_figures(args.dataset, fold, work, args.general, args.sizes, SELECTIONS, args.dims)
        if result is None:
            log.info("fold %d: no cached features yet", fold)
            continue
        entry["folds"][str(fold)] = result
        entry.update({"command": command("discover"), "when": utc_now(), "machine": machine()})
        stored[key] = entry
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(stored, indent=2))
        log.info("fold %d written to %s", fold, out)


# -- scale -----------------------------------------------------------------------------------------------


def synthetic(n: int, dim: int = 128, per_cluster: int = 100, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors: ``n // per_cluster`` tight groups (90%) and scattered vectors (10%)."""
    rng = np.random.default_rng(seed)
    k = max(1, n // per_cluster)
    centres = rng.normal(size=(k, dim)).astype(np.float32)
    grouped = int(n * 0.9)
    x = centres[rng.integers(0, k, grouped)] + 0.35 * rng.normal(size=(grouped, dim)).astype(np.float32)
    x = np.concatenate([x, rng.normal(size=(n - grouped, dim)).astype(np.float32) * 1.5])
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def scale_one(n: int, dims: int, dim: int) -> dict:
    from index.scoring.clustering import ClusterParams, cluster_vectors

    x = synthetic(n, dim)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    got = cluster_vectors(x, ClusterParams(dims=dims))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n": n,
        "dim": dim,
        "dims": dims,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),  # every thread's CPU time: less sensitive than wall time to a busy machine
        "peak_rss_mib": round(peak / 1024, 1),
        "rss_growth_mib": round((peak - before) / 1024, 1),
        "clusters": got.count,
        "clustered": int((got.labels >= 0).sum()),
    }


def scale(args) -> None:
    stored = load_figures(args.out)
    rows = []
    for n in args.sizes:
        for dims in args.dims:
            cmd = [sys.executable, "-m", "bench.discover", "scale-one", "--n", str(n), "--dims", str(dims)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=True)
                row = json.loads(done.stdout.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                row = {"n": n, "dim": 128, "dims": dims, "seconds": None, "timed_out_after_s": args.timeout}
            log.info("scale %s", row)
            rows.append(row)
    kept = [
        r
        for r in stored.get("scale", {}).get("rows", [])
        if (r["n"], r["dims"]) not in {(x["n"], x["dims"]) for x in rows}
    ]
    rows = sorted(kept + rows, key=lambda r: (r["n"], r["dims"]))
    stored["scale"] = {"rows": rows, "command": command("discover"), "when": utc_now(), "machine": machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(stored, indent=2))


# -- report ----------------------------------------------------------------------------------------------


def _f(v, d=3) -> str:
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{d}f}"


def report(args) -> None:
    stored = load_figures(args.out)
    for dataset in ("fish4knowledge", "plankton"):
        entry = stored.get(dataset)
        if not entry:
            continue
        folds = entry["folds"]
        keys = list(next(iter(folds.values()))["rows"])
        print(f"\n{dataset}: folds {', '.join(sorted(folds))}, mean over folds")
        print(
            "| space / min_cluster_size / selection | clusters (held-out species) | purity | coverage | ARI | "
            "known in clusters | one click names | 5-shot add |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for key in keys:
            rows = [f["rows"][key] for f in folds.values() if key in f["rows"]]

            def mean(c: str, rows=rows) -> float:
                return float(np.nanmean([r[c] for r in rows]))

            five = float(np.mean([f["five_shot_named"] for f in folds.values()]))
            print(
                f"| {key} | {mean('clusters'):.1f} ({mean('held_out_species_present'):.1f}) | {_f(mean('purity'))} | "
                f"{_f(mean('coverage'))} | {_f(mean('ari'))} | {mean('known_in_clusters'):.1f} "
                f"({_f(mean('known_share_of_clustered'))}) | {_f(mean('one_click_named'))} | {_f(five)} |"
            )
    if "scale" in stored:
        print("\n| vectors | dims clustered | seconds | CPU seconds | peak RSS (MiB) | clusters |")
        print("|---|---|---|---|---|---|")
        for r in stored["scale"]["rows"]:
            print(
                f"| {r['n']:,} | {r['dims'] or r['dim']} | {_f(r.get('seconds'), 1)} | {_f(r.get('cpu_seconds'), 1)} | "
                f"{_f(r.get('peak_rss_mib'), 0)} | {r.get('clusters', '—')} |"
            )


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.discover", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    f = sub.add_parser("folds")
    f.add_argument("--dataset", choices=["fish4knowledge", "plankton"], default="fish4knowledge")
    f.add_argument("--folds", type=int, nargs="*", default=[0, 1, 2, 3])
    f.add_argument("--general", nargs="*", default=["lite0-160", "lite0-96"])
    f.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    f.add_argument("--dims", type=int, nargs="*", default=[32, 0], help="principal components kept (0: all)")
    f.add_argument("--work", type=Path, default=None)
    s = sub.add_parser("scale")
    s.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    s.add_argument("--dims", type=int, nargs="*", default=[0, 32])
    s.add_argument("--timeout", type=int, default=900)
    one = sub.add_parser("scale-one")
    one.add_argument("--n", type=int, required=True)
    one.add_argument("--dims", type=int, default=0)
    one.add_argument("--dim", type=int, default=128)
    r = sub.add_parser("report")
    for parser in (f, s, r):
        parser.add_argument(
            "--out", type=Path, default=OUT, help="the figures JSON (default bench/figures/discover.json)"
        )
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.step == "scale-one":
        print(json.dumps(scale_one(args.n, args.dims, args.dim)))
    elif args.step == "scale":
        scale(args)
    elif args.step == "folds":
        folds(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
