"""How often the rank named for a crop judged unknown is right, before and after issue 30 item 5.

    /work/shared/tools/cpujob -- .venv/bin/python -m bench.unknown_ranks --home /tmp/reef [--model ID]

Reads a trained home (the demo's: ``oceanid --home /tmp/reef demo``), never writes it. Its
held-out species' crops are split as ``index build`` splits them (``choice_rows``: the half the
decision was made on, by track) and graded on the other half, among the crops the stored decision
scorer flags unknown at its stored threshold. Rules:

- ``before``: the deepest taxon above species whose summed known-species probability passes the
  stored rank threshold (``index.taxonomy.decode`` with the unknown flag: what f856aba answered);
  its probability is that sum.
- ``after, leave-one-species-out``: the shipped rule (``index.metrics.unknown_ranks``) measured
  on the choice half of the OTHER held-out species, applied to the graded half of each one: the
  figure for a species nothing was measured on.
- ``after, as built``: measured on the choice half of every held-out species (what ``index build``
  stores), applied to the graded half.

Per rule: crops graded, share given a rank, share of those right at their rank, mean stated
probability of the named ones (a calibrated rule states about what it achieves), and per rank.
Writes bench/figures/unknown_ranks.json.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from app.workspace.decisions import choice_rows, fit_scorers, trained_only
from index.catalog.catalog import Catalog
from index.catalog.decisions import load_decision
from index.catalog.embeddings import group_keys, list_models, load_embeddings, load_prototypes
from index.catalog.taxa import tree
from index.metrics.unknown_ranks import fit_unknown_ranks, place_unknown
from index.records import HOLDOUT, TRAIN
from index.scoring.calibration import calibrated_probabilities
from index.taxonomy import decode, lineage_of, rank_table

FIGURES = Path(__file__).resolve().parent / "figures" / "unknown_ranks.json"


def graded(answers, labels, lineages) -> dict:
    """Share named, share right among named, mean stated probability; per rank."""
    named = [(a, lab) for a, lab in zip(answers, labels, strict=True) if a.name is not None]
    right = [lineage_of(lab, lineages).at(a.rank) == a.name for a, lab in named]
    by_rank = {}
    for rank, n in sorted(Counter(a.rank for a, _ in named).items()):
        hits = [r for (a, _), r in zip(named, right, strict=True) if a.rank == rank]
        by_rank[rank] = {"named": n, "right": float(np.mean(hits))}
    return {
        "crops": len(answers),
        "named": len(named),
        "named_share": len(named) / max(1, len(answers)),
        "right_share": float(np.mean(right)) if right else None,
        "stated": float(np.mean([a.probability for a, _ in named])) if named else None,
        "by_rank": by_rank,
    }


def run(home: Path, model_id: str | None) -> dict:
    catalog = Catalog(home / "catalog.duckdb")
    decision = load_decision(catalog, model_id) if model_id else None
    if decision is None:
        model_id = list_models(catalog)[-1]["model_id"]
        decision = load_decision(catalog, model_id)
    prototypes, origins = load_prototypes(catalog, model_id)
    trained = trained_only(prototypes, origins)
    _, train_v, train_l = load_embeddings(catalog, model_id, (TRAIN,), with_labels=True)
    scorers, _ = fit_scorers(trained, (train_v, train_l), names=(decision.scorer,))
    held_ids, held_v, held_l = load_embeddings(catalog, model_id, (HOLDOUT,), with_labels=True)
    new = ~np.isin(held_l, list(trained.names))
    held_ids, held_v, held_l = held_ids[new], held_v[new], held_l[new].astype(str)
    flagged = scorers[decision.scorer].score(held_v) < decision.thresholds[decision.scorer]
    choice = choice_rows(group_keys(catalog, held_ids))
    lineages = tree(catalog)
    table = rank_table(trained.names, lineages)
    sims = trained.similarities(held_v)
    probs = decision.calibration.probabilities(sims) if decision.calibration else calibrated_probabilities(sims, 1.0)
    truth = {n: lineage_of(n, lineages) for n in set(held_l.tolist())}
    grade = flagged & ~choice
    fit = flagged & choice
    species = sorted(set(held_l[grade].tolist()))
    out = {
        "home": str(home),
        "model": model_id,
        "scorer": decision.scorer,
        "rank_threshold": decision.rank_threshold,
        "held_out_species": species,
        "flagged_share": float(flagged.mean()),
        "rules": {},
        "per_species": {},
    }
    before = decode(table, probs[grade], decision.rank_threshold, "probable", unknown=np.ones(grade.sum(), bool))
    out["rules"]["before"] = graded(before, held_l[grade], lineages)
    as_built = fit_unknown_ranks(table, probs[fit], sims[fit], held_l[fit], truth)
    out["rules"]["after, as built"] = graded(
        place_unknown(table, probs[grade], sims[grade], as_built), held_l[grade], lineages
    )
    loso_answers, loso_labels = [], []
    for name in species:
        others = fit & (held_l != name)
        measured = fit_unknown_ranks(table, probs[others], sims[others], held_l[others], truth)
        rows = grade & (held_l == name)
        answers = place_unknown(table, probs[rows], sims[rows], measured)
        loso_answers += answers
        loso_labels += held_l[rows].tolist()
        out["per_species"][name] = {
            "before": graded(
                [a for a, lab in zip(before, held_l[grade], strict=True) if lab == name],
                [name] * int(rows.sum()),
                lineages,
            ),
            "after, leave-one-species-out": graded(answers, [name] * len(answers), lineages),
        }
    out["rules"]["after, leave-one-species-out"] = graded(loso_answers, loso_labels, lineages)
    return out


def show(result: dict) -> None:
    print(
        f"{result['model']} ({result['scorer']}), held-out species {', '.join(result['held_out_species'])}; "
        f"{result['flagged_share']:.0%} of held-out crops flagged unknown"
    )
    for rule, g in [
        *result["rules"].items(),
        *((f"{rule} | {s}", g) for s, rules in result["per_species"].items() for rule, g in rules.items()),
    ]:
        right = "-" if g["right_share"] is None else f"{g['right_share']:.2f}"
        stated = "-" if g["stated"] is None else f"{g['stated']:.2f}"
        ranks = ", ".join(f"{r} {v['named']} ({v['right']:.2f})" for r, v in g["by_rank"].items())
        print(
            f"{rule:55s} graded {g['crops']:4d}  named {g['named_share']:.2f}  right {right}  stated {stated}  "
            f"[{ranks}]"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--model", default=None)
    args = p.parse_args()
    result = run(args.home, args.model)
    show(result)
    FIGURES.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
