"""Every OOD scorer's direction on a trained home: AUROC of known validation crops against the
held-out species' crops (higher score = more known; 0.5 = chance, below it = inverted), and the
share of held-out crops flagged unknown at the 95%-TPR threshold. Includes relative Mahalanobis
as f856aba fitted it (background covariance Ledoit-Wolf shrunk on its own: issue 30 item 6).

    /work/shared/tools/cpujob -- .venv/bin/python -m bench.ood_direction --home /tmp/reef

Reads the home, never writes it. Writes bench/figures/ood_direction.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score

from app.workspace.decisions import trained_only
from index.catalog.catalog import Catalog
from index.catalog.embeddings import list_models, load_embeddings, load_prototypes
from index.records import HOLDOUT, TRAIN, VAL
from index.scoring.ood import SCORERS, calibrate, make_scorer

FIGURES = Path(__file__).resolve().parent / "figures" / "ood_direction.json"


def old_relative(scorer, train: np.ndarray):
    """f856aba's relative Mahalanobis: the background Gaussian shrunk on its own."""
    background = LedoitWolf().fit(train.astype(np.float64))

    def score(q: np.ndarray) -> np.ndarray:
        centred = q.astype(np.float64) - background.location_
        md0 = ((centred @ background.precision_) * centred).sum(axis=1)
        return -(scorer.classes.distances(q) ** 2 - md0[:, None]).min(axis=1)

    return score


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--model", default=None)
    args = p.parse_args()
    catalog = Catalog(args.home / "catalog.duckdb")
    model = args.model or list_models(catalog)[-1]["model_id"]
    prototypes, origins = load_prototypes(catalog, model)
    trained = trained_only(prototypes, origins)
    _, tv, tl = load_embeddings(catalog, model, (TRAIN,), with_labels=True)
    _, vv, vl = load_embeddings(catalog, model, (VAL,), with_labels=True)
    _, hv, hl = load_embeddings(catalog, model, (HOLDOUT,), with_labels=True)
    known, new = vv[np.isin(vl, trained.names)], hv[~np.isin(hl, trained.names)]
    truth = np.r_[np.ones(len(known)), np.zeros(len(new))]
    out = {
        "home": str(args.home),
        "model": model,
        "dim": int(tv.shape[1]),
        "train": int(len(tv)),
        "known_val": int(len(known)),
        "held_out": int(len(new)),
        "scorers": {},
    }
    fitted = {}
    for name in SCORERS:
        fitted[name] = make_scorer(name).fit(tv, tl, trained)
    funcs = {name: s.score for name, s in fitted.items()}
    funcs["relative_mahalanobis (f856aba)"] = old_relative(fitted["relative_mahalanobis"], tv)
    for name, score in funcs.items():
        a, b = score(known), score(new)
        t = calibrate(a)
        out["scorers"][name] = {"auroc": float(roc_auc_score(truth, np.r_[a, b])), "flagged": float((b < t).mean())}
        print(
            f"{name:32s} AUROC {out['scorers'][name]['auroc']:.3f}  held-out flagged at 95% TPR "
            f"{out['scorers'][name]['flagged']:.2f}"
        )
    FIGURES.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
