"""``oceanid evaluate``: classification, OOD, retrieval and few-shot figures on the test split.

Everything is measured on the *trained* system: prototypes learned in training
(not species added later), scorers fitted on the train split and calibrated on
val, known crops from the test split, unknown crops from the held-out species.
Few-shot adds each held-out species in memory from 1 and 5 examples.
"""

from __future__ import annotations

import logging

import numpy as np

from app.engine import Engine, fit_scorers
from index.catalog import Catalog
from index.embeddings import load_embeddings
from index.errors import EmptyIndex
from index.metrics import classification_metrics, ood_metrics, retrieval_metrics
from index.prototypes import Prototypes

log = logging.getLogger(__name__)

SHOTS = (1, 5)


def _subset(prototypes: Prototypes, names: list[str]) -> Prototypes:
    for name in [n for n in prototypes.names if n not in names]:
        prototypes = prototypes.without_class(name)
    return prototypes


def _few_shot(base: Prototypes, held: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
              rng: np.random.Generator) -> dict:
    test_v, test_l = test
    before = float((np.asarray(base.names)[base.similarities(test_v).argmax(1)] == test_l).mean())
    out = {}
    for shots in SHOTS:
        per_species = {}
        for name in sorted(set(held[1].tolist())):
            rows = np.flatnonzero(held[1] == name)
            if rows.size <= shots:
                continue
            pick = rng.choice(rows, size=shots, replace=False)
            rest = np.setdiff1d(rows, pick)
            protos = base.with_class(name, held[0][pick])
            names = np.asarray(protos.names)
            recall = float((names[protos.similarities(held[0][rest]).argmax(1)] == name).mean())
            after = float((names[protos.similarities(test_v).argmax(1)] == test_l).mean())
            per_species[name] = {"recall": recall, "known_accuracy": after, "known_accuracy_change": after - before}
        if per_species:
            out[f"shots_{shots}"] = {
                "recall": float(np.mean([v["recall"] for v in per_species.values()])),
                "known_accuracy_change": float(np.mean([v["known_accuracy_change"] for v in per_species.values()])),
                "known_accuracy_before": before,
                "species": per_species,
            }
    return out


def confusable_pairs(prototypes: Prototypes, top: int = 10) -> list[dict]:
    """The most similar pairs of species by their closest prototypes."""
    names = prototypes.names
    sims = prototypes.vectors @ prototypes.vectors.T
    owner = prototypes.owners
    best: dict[tuple[int, int], float] = {}
    for i, j in zip(*np.triu_indices(len(owner), 1)):
        a, b = int(owner[i]), int(owner[j])
        if a != b:
            key = (min(a, b), max(a, b))
            best[key] = max(best.get(key, -1.0), float(sims[i, j]))
    pairs = sorted(best.items(), key=lambda kv: -kv[1])[:top]
    return [{"a": names[a], "b": names[b], "similarity": s} for (a, b), s in pairs]


def evaluate(engine: Engine, catalog: Catalog, seed: int = 0) -> tuple[dict, dict]:
    """Return (the JSON summary, raw arrays for the report's plots). Raises EmptyIndex."""
    model_id = engine.model_id
    trained = [n for n in engine.prototypes.names if engine.origins.get(n) == "train"]
    base = _subset(engine.prototypes, trained)
    _, train_v, train_l = load_embeddings(catalog, model_id, ("train",), with_labels=True)
    _, val_v, val_l = load_embeddings(catalog, model_id, ("val",), with_labels=True)
    _, test_v, test_l = load_embeddings(catalog, model_id, ("test",), with_labels=True)
    _, held_v, held_l = load_embeddings(catalog, model_id, ("holdout",), with_labels=True)
    known = np.isin(test_l, trained)
    test_v, test_l = test_v[known], test_l[known].astype(str)
    if len(test_v) == 0:
        raise EmptyIndex("no embedded test crops of trained species", hint="run `oceanid split` and `oceanid embed`")
    sims = base.similarities(test_v)
    cls = classification_metrics(test_l, sims, base.names)
    summary: dict = {
        "model": model_id, "generation": engine.generation,
        "counts": {"train": int(len(train_v)), "val": int(len(val_v)), "test": int(len(test_v)),
                   "holdout": int(len(held_v)), "species": len(trained),
                   "held_out_species": sorted(set(held_l.astype(str).tolist()))},
        "classification": {
            "top1": cls.top1, "top5": cls.top5, "f1_macro": cls.macro["f1"], "f1_weighted": cls.weighted["f1"],
            "precision_macro": cls.macro["precision"], "recall_macro": cls.macro["recall"],
            "per_class": {c: {"precision": p, "recall": r, "f1": f, "support": s}
                          for c, p, r, f, s in zip(cls.classes, cls.precision, cls.recall, cls.f1, cls.support)},
        },
        "retrieval": {}, "ood": {}, "few_shot": {},
        "confusable": confusable_pairs(base),
    }
    raw = {"confusion": np.asarray(cls.confusion), "classes": cls.classes, "roc": {},
           "test": (test_v, test_l), "held": (held_v, held_l.astype(str))}
    r = retrieval_metrics(test_v, test_l)
    summary["retrieval"] = {"recall_at_1": r["recall@1"], "recall_at_5": r["recall@5"],
                            "recall_at_10": r["recall@10"], "map_at_r": r["map@r"], "queries": r["queries"]}
    if len(held_v):
        scorers, thresholds = fit_scorers(base, (train_v, train_l), (val_v, val_l))
        for name, scorer in scorers.items():
            s_known, s_unknown = scorer.score(test_v), scorer.score(held_v)
            o = ood_metrics(s_known, s_unknown, thresholds[name])
            summary["ood"][name] = {"auroc": o.auroc, "fpr95": o.fpr_at_95_tpr, "aupr": o.aupr_out,
                                    "aupr_in": o.aupr_in, "threshold": o.threshold,
                                    "known_accuracy": o.known_accuracy, "unknown_accuracy": o.unknown_accuracy}
            raw["roc"][name] = (s_known, s_unknown)
        summary["ood_decision_scorer"] = engine.scorer
        summary["few_shot"] = _few_shot(base, (held_v, held_l.astype(str)), (test_v, test_l),
                                        np.random.default_rng(seed))
    return summary, raw
