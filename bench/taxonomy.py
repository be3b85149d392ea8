"""Taxonomy-aware answers through the product path: held-out species named at genus / family.

    .venv/bin/python -m bench.taxonomy --dataset fish4knowledge --home /tmp/taxa-f4k \
        --lock /tmp/oceanid-cpu.lock
    ... --dataset synthetic --home /tmp/taxa-demo     (the demo home: `oceanid demo`)
    ... --dataset plankton --home /tmp/taxa-plankton
    ... --dataset fish4knowledge --home /tmp/taxa-f4k --lineage bench/lineages/fish4knowledge.csv \
        --key "fish4knowledge + class"   (kingdom .. class added to species.csv's genus and family)
    .venv/bin/python -m bench.taxonomy --report       (the table from the stored JSON)

Each run is the CLI a user types: ``ingest folders`` (fish4knowledge with its species.csv,
whose genus and family columns give the lineages; plankton's folder names), ``split`` with
species held out, ``train``, ``embed``, ``index build`` (which chooses the rank threshold on
validation), ``evaluate --json``. The heavy steps (train, embed, demo) each run under ``--lock``
(one flock hold per step). A home with a trained model is taken as embedded: only ``index build``
and ``evaluate`` run again (short; not under the lock).

fish4knowledge holds out Chaetodon lunulatus (its sibling Chaetodon trifascialis is known),
Chromis chrysura (Pomacentridae; five other damselfish genera known) and Neoniphon sammara
(Holocentridae; Myripristis known), as leave-species-out fold 0 did. Plankton keeps the 21
largest classes and holds out the rest (``--classes 21 --holdout rest``). The synthetic reef
holds out its suggested species (siblings of known ones by construction).
Plankton folders carry no lineage: bench/lineages/pwssc_plankton.csv (kingdom .. genus after
WoRMS, written for this bench; non-taxa such as Blob, Snow, Dot get none) is imported with
``taxa import`` right after ingest. Results: bench/figures/taxonomy.json (one key per run).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from bench.common import CLI, FIGURES, FISH4K, PLANKTON, REPO, bench_parser, cli_env, load_figures, store_figures

OUT = FIGURES / "taxonomy.json"
F4K_HOLDOUT = ("Chaetodon lunulatus", "Chromis chrysura", "Neoniphon sammara")

STEPS = {
    "fish4knowledge": [
        ["ingest", "folders", str(FISH4K), "--group-pattern", r"fish_(\d+)_", "--source-name", "f4k"],
        ["split", *[a for name in F4K_HOLDOUT for a in ("--holdout", name)], "--seed", "0"],
        ["train"],
        ["embed"],
    ],
    "plankton": [
        ["ingest", "folders", str(PLANKTON), "--source-name", "pwssc"],
        ["taxa", "import", str(REPO / "bench" / "lineages" / "pwssc_plankton.csv")],
        ["split", "--classes", "21", "--holdout", "rest", "--seed", "0"],
        ["train", "--epochs", "4"],
        ["embed"],
    ],
    "synthetic": [["demo"]],
}
HEAVY = {"train", "embed", "demo"}


def oceanid(home: Path, args: list[str], lock: str | None) -> str:
    cmd = [*CLI, "--home", str(home), *args]
    if lock and args[0] in HEAVY:
        cmd = ["flock", lock, *cmd]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=cli_env())
    print(f"  {' '.join(args[:2])}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out.stdout


def run(dataset: str, home: Path, lock: str | None, lineage: Path | None = None) -> dict:
    trained = (home / "models").is_dir() and any((home / "models").glob("*/config.json"))
    for step in STEPS[dataset]:
        if trained and step[0] in ("ingest", "taxa", "split", "train", "embed", "demo"):  # a run resumed
            continue
        oceanid(home, step, lock)
    if lineage is not None:  # more ranks for the same catalog: index build chooses the threshold again
        oceanid(home, ["taxa", "import", str(lineage)], lock)
    oceanid(home, ["index", "build"], lock)
    summary = json.loads(oceanid(home, ["evaluate", "--json"], lock))
    t = summary["taxonomy"]
    figures = {
        "model": summary["model"],
        "known_test_crops": summary["counts"]["test"],
        "held_out_crops": summary["counts"]["holdout"],
        "held_out_species": summary["counts"]["held_out_species"],
        "top1": summary["classification"]["top1"],
        "rank_threshold": t["rank_threshold"],
        "threshold_source": t["threshold_source"],
        "species_mean_distance": t["species_mean_distance"],
        "species_rank_accuracy": t["species_rank_accuracy"],
        "decodings": t["decodings"],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return figures


def report(all_figures: dict) -> str:
    lines = [
        "| dataset | decode | threshold | mean distance (known test) | held-out species | crops | flagged new "
        "| right genus | right family |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for dataset, f in all_figures.items():
        for method, d in f["decodings"].items():
            for name, p in [("all", d["held_out"]), *d["held_out_species"].items()]:
                if p is None:
                    continue
                lines.append(
                    f"| {dataset} | {method} | {f['rank_threshold']:.2f} ({f['threshold_source']}) | "
                    f"{d['mean_distance']:.3f} | {name} | {p['crops']} | {p['flagged_new']:.3f} | "
                    f"{fmt(p['genus'])} | {fmt(p['family'])} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument("--dataset", choices=sorted(STEPS))
    parser.add_argument("--home", type=Path)
    parser.add_argument("--lock", default=None, help="flock file held around each heavy step")
    parser.add_argument("--lineage", type=Path, default=None, help="a lineage CSV imported before index build")
    parser.add_argument("--key", default=None, help="the figures' key in the JSON (default: the dataset)")
    parser.add_argument("--report", action="store_true", help="print the table from the stored JSON")
    args = parser.parse_args()
    if not args.report:
        if args.dataset is None or args.home is None:
            parser.error("--dataset and --home are needed (or --report)")
        figures = run(args.dataset, args.home, args.lock, args.lineage)
        store_figures(OUT, args.key or args.dataset, figures)  # read late: runs may overlap
    print(report(load_figures(OUT)))


if __name__ == "__main__":
    main()
