"""Decision rules over two vector spaces, evaluated from cached features (bench/two_spaces.py).

A *naming space* is where a crop is named (nearest class prototype, as today): the tuned space, a general
space, either centred on its training mean and re-normalised (SimpleShot "CL2N"), or a fusion
``[sqrt(w) t, sqrt(1-w) g]`` of the two centred spaces, whose cosine is ``w cos_t + (1-w) cos_g``.
An *unknown rule* decides whether the name is given: the knn scorer (k-th neighbour, ``few_shot`` for
the added species, threshold at 95% of the known validation crops) in one space; the z-normalised sum of
the tuned and the general knn scores; or two stages (the tuned space's trained-species score accepts; below
its threshold, a crop is named only when the naming space names an added species and that space's knn
score accepts it).

Every rule sees the same support draws (paired comparison). The fusion weight of a fold is chosen on the
other folds (their added species' 5-shot ceiling and known validation top-1), never on the fold itself.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from index.scoring.fusion import Fusion
from index.scoring.ood import KnnScorer, calibrate
from index.scoring.prototypes import Prototypes

WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
COLUMNS = (
    "named",
    "called_unknown",
    "named_wrongly",
    "ceiling",
    "known_named_added",
    "known_top1",
    "known_f1_macro",
    "unknown_auroc",
    "recall_at_1",
)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def cl2n(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """SimpleShot CL2N: centred on ``mean`` (the training crops'), re-normalised."""
    return unit(x - mean)


def fuse(t: np.ndarray, g: np.ndarray, w: float) -> np.ndarray:
    """Unit ``t`` and ``g`` -> unit ``[sqrt(w) t, sqrt(1-w) g]``: its cosine is ``w cos_t + (1-w) cos_g``."""
    return np.concatenate([np.sqrt(w) * t, np.sqrt(1 - w) * g], 1).astype(np.float32)


def draw_support(rng, y, g, idx, added, shots):
    support, queries = {}, {}
    for species in added:
        mine = idx["added"][y[idx["added"]] == species]
        chosen = rng.choice(np.unique(g[mine]), shots, replace=False)
        support[species] = np.array([rng.choice(mine[g[mine] == c]) for c in chosen])
        queries[species] = mine[~np.isin(g[mine], chosen)]
    return support, queries


class Draw:
    """One support draw: prototypes and knn scorers per space, computed once and shared by every rule."""

    def __init__(self, reps, y, idx, support, queries, added):
        self.reps, self.y, self.idx, self.added = reps, y, idx, added
        self.support, self.queries = support, queries
        self.q = np.concatenate(list(queries.values()))
        self.train = np.concatenate([idx["train"], *support.values()])
        self.pools = {"q": self.q, "test": idx["test"], "unknown": idx["unknown"], "val": idx["val"]}
        self._names, self._knn, self._trained, self._protos = {}, {}, {}, {}

    def prototypes(self, space) -> Prototypes:
        if space not in self._protos:
            v, y, tr = self.reps[space], self.y, self.idx["train"]
            protos = Prototypes.fit(v[tr], y[tr])
            for species, rows in self.support.items():
                protos = protos.with_class(species, v[rows])
            self._protos[space] = protos
        return self._protos[space]

    def names(self, space):
        """``pool -> predicted names`` by nearest prototype in ``space``.

        A fused space names as the product does: each class's prototype in each space (the mean of its
        raw vectors there), the two fused by the stored :class:`index.scoring.fusion.Fusion`.
        """
        if space not in self._names:
            v = self.reps[space]
            fusion = self.reps.get(("fusion", space))
            if fusion is None:
                protos = self.prototypes(space)
                rows, owners, names = protos.vectors, protos.owners, np.asarray(protos.names)
            else:
                pt, pg = self.prototypes("tuned"), self.prototypes(fusion[0])
                assert pt.names == pg.names and len(pt.vectors) == len(pt.names)
                rows, owners, names = fusion[1].fuse(pt.vectors, pg.vectors), pt.owners, np.asarray(pt.names)
            self._names[space] = {k: names[owners[(v[ix] @ rows.T).argmax(1)]] for k, ix in self.pools.items()}
        return self._names[space]

    def knn(self, space):
        """``pool -> knn score`` in ``space`` with the added species as few-shot classes."""
        if space not in self._knn:
            v = self.reps[space]
            scorer = KnnScorer(few_shot=self.added).fit(v[self.train], self.y[self.train])
            self._knn[space] = {k: scorer.score(v[ix]) for k, ix in self.pools.items()}
        return self._knn[space]

    def trained(self, space):
        """``pool -> knn score`` against the trained species only (stage one of the two-stage rule)."""
        if space not in self._trained:
            v, tr = self.reps[space], self.idx["train"]
            scorer = KnnScorer().fit(v[tr], self.y[tr])
            self._trained[space] = {k: scorer.score(v[ix]) for k, ix in self.pools.items()}
        return self._trained[space]


def decide(draw: Draw, naming: str, rule: tuple):
    """``(names, accepted, score)`` per pool under ``rule``; score orders known above unknown (AUROC)."""
    names = draw.names(naming)
    kind = rule[0]
    if kind == "knn":
        s = draw.knn(rule[1])
        thr = calibrate(s["val"])
        return names, {k: s[k] >= thr for k in s}, s
    if kind == "zsum":
        parts = [draw.knn(space) for space in rule[1:]]
        stats = [(p["val"].mean(), p["val"].std() + 1e-9) for p in parts]
        s = {k: sum((p[k] - m) / sd for p, (m, sd) in zip(parts, stats, strict=True)) for k in parts[0]}
        thr = calibrate(s["val"])
        return names, {k: s[k] >= thr for k in s}, s
    if kind == "two-stage":
        first, second = draw.trained(rule[1]), draw.knn(rule[2])
        t1, t2 = calibrate(first["val"]), calibrate(second["val"])
        ok = {k: (first[k] >= t1) | ((second[k] >= t2) & np.isin(names[k], draw.added)) for k in first}
        # a score for the AUROC: stage one's, lifted above every stage-one rejection when stage two accepts
        s = {k: np.where(first[k] >= t1, first[k], np.where(ok[k], t1, first[k] - 1.0)) for k in first}
        return names, ok, s
    raise ValueError(kind)


def figures(draw: Draw, naming: str, rule: tuple, known) -> dict:
    names, ok, s = decide(draw, naming, rule)
    y, added, q = draw.y, draw.added, draw.q
    pred, acc = names["q"], ok["q"]
    per = lambda m: float(np.mean([np.mean(m[y[q] == sp]) for sp in added]))  # noqa: E731
    yt = y[draw.idx["test"]]
    return {
        "named": per(acc & (pred == y[q])),
        "called_unknown": per(~acc),
        "named_wrongly": per(acc & (pred != y[q])),
        "ceiling": per(pred == y[q]),
        "known_named_added": float(np.mean(ok["test"] & np.isin(names["test"], added))),
        "known_top1": float(np.mean(names["test"] == yt)),
        "known_f1_macro": macro_f1(yt, names["test"], known),
        "unknown_auroc": float(
            roc_auc_score(np.r_[np.ones(len(yt)), np.zeros(len(draw.idx["unknown"]))], np.r_[s["test"], s["unknown"]])
        ),
    }


def macro_f1(truth: np.ndarray, pred: np.ndarray, labels) -> float:
    """F1-macro over ``labels`` (as scikit-learn's ``f1_score(average="macro", zero_division=0)``, faster)."""
    out = []
    for c in labels:
        tp = np.sum((pred == c) & (truth == c))
        denom = np.sum(pred == c) + np.sum(truth == c)
        out.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(out))


def recall_at_1(v: np.ndarray, y, g, idx, added) -> float:
    """Held-out species' crops: is the nearest crop of another group (added + known test) the same species?

    Mean over the added species.
    """
    q = idx["added"]
    pool = np.concatenate([idx["added"], idx["test"]])
    sims = v[q] @ v[pool].T
    _, codes = np.unique(g, return_inverse=True)
    sims[codes[q][:, None] == codes[pool][None, :]] = -np.inf
    hit = y[pool][sims.argmax(1)] == y[q]
    return float(np.mean([np.mean(hit[y[q] == sp]) for sp in added]))


def fold_reps(spaces: dict, idx, weights=WEIGHTS) -> dict[str, np.ndarray]:
    """Every naming space of a fold: raw and CL2N of each space, fusions of tuned CL2N with each general CL2N."""
    tr = idx["train"]
    reps = {}
    for name, x in spaces.items():
        reps[name] = x.astype(np.float32)
        reps[f"{name} CL2N"] = cl2n(x, x[tr].mean(0))
    for name in spaces:
        if name != "tuned":
            for w in weights:
                fusion = Fusion.fit(spaces["tuned"][tr], spaces[name][tr], w)
                reps[f"fused {name} w={w}"] = fusion.fuse(spaces["tuned"], spaces[name])
                reps[("fusion", f"fused {name} w={w}")] = (name, fusion)
    return reps


def rules_for(general: list[str], w: dict[str, float]) -> list[tuple[str, str, tuple]]:
    """``(row name, naming space, unknown rule)`` of every rule reported."""
    rows = [("tuned (today)", "tuned", ("knn", "tuned")), ("tuned CL2N", "tuned CL2N", ("knn", "tuned CL2N"))]
    for name in general:
        f = f"fused {name} w={w[name]}"
        rows += [
            (f"general {name}", name, ("knn", name)),
            (f"general {name} CL2N", f"{name} CL2N", ("knn", f"{name} CL2N")),
            (f"fused {name} · unknown by tuned", f, ("knn", "tuned")),
            (f"fused {name} · unknown by fused", f, ("knn", f)),
            (f"fused {name} · unknown by general", f, ("knn", f"{name} CL2N")),
            (f"fused {name} · unknown by z-sum tuned+general", f, ("zsum", "tuned", f"{name} CL2N")),
            (f"fused {name} · two-stage tuned -> tuned (product rule 'tuned')", f, ("two-stage", "tuned", "tuned")),
            (f"fused {name} · two-stage tuned -> fused", f, ("two-stage", "tuned", f)),
            (f"fused {name} · two-stage tuned -> general (product rule 'two-stage')", f, ("two-stage", "tuned", name)),
            (f"fused {name} · two-stage tuned -> general CL2N", f, ("two-stage", "tuned", f"{name} CL2N")),
        ]
    return rows


def weight_grid(reps, y, g, idx, added, known, general, draws=5, shots=5, seed=0) -> dict:
    """``general name -> w -> (5-shot ceiling, known val top-1)`` of the fused naming space."""
    rng = np.random.default_rng(seed)
    ceil = {(n, w): [] for n in general for w in WEIGHTS}
    for _ in range(draws):
        support, queries = draw_support(rng, y, g, idx, added, shots)
        d = Draw(reps, y, idx, support, queries, added)
        for name, w in ceil:
            names = d.names(f"fused {name} w={w}")
            ceil[name, w].append(np.mean([np.mean(names["q"][y[d.q] == sp] == sp) for sp in added]))
    # known validation top-1 does not depend on the draw's added species once they are few (the last draw's)
    return {
        name: {
            str(w): {
                "ceiling": float(np.mean(ceil[name, w])),
                "val_top1": float(np.mean(d.names(f"fused {name} w={w}")["val"] == y[idx["val"]])),
            }
            for w in WEIGHTS
        }
        for name in general
    }


def choose_weight(grids: dict[int, dict], fold: int, name: str) -> float:
    """The weight that maximises ceiling + val top-1 averaged over the *other* folds."""
    others = [grids[f][name] for f in grids if f != fold] or [grids[fold][name]]
    score = {w: np.mean([o[str(w)]["ceiling"] + o[str(w)]["val_top1"] for o in others]) for w in WEIGHTS}
    return max(score, key=score.get)


#: fusion weights whose rule rows each fold stores (the fold's weight is then chosen on the other folds)
TABLE_WEIGHTS = (0.3, 0.5, 0.7)


def evaluate_fold(split, spaces: dict, general: list[str], shots, draws, weights=TABLE_WEIGHTS) -> dict:
    """One fold, from its cached features: the weight grid, and every rule's figures at each weight.

    Fused rows are keyed ``"<row> @w=<w>"``; the others once. JSON-ready."""
    paths, y, g, added, known, idx = split
    general = [n for n in general if n in spaces]
    reps = fold_reps(spaces, idx)
    grid = weight_grid(reps, y, g, idx, added, known, general, draws=draws)
    rules = {}
    for w in weights:
        for row, naming, rule in rules_for(general, {n: w for n in general}):
            rules[f"{row} @w={w}" if naming.startswith("fused") else row] = (naming, rule)
    recall = {naming: recall_at_1(reps[naming], y, g, idx, added) for naming in {n for n, _ in rules.values()}}
    table = {
        row: {"naming": naming, "rule": list(rule), "recall_at_1": recall[naming]}
        for row, (naming, rule) in rules.items()
    }
    for k in shots:
        rng = np.random.default_rng(0)
        got: dict[str, list] = {row: [] for row in rules}
        for _ in range(draws):  # one draw shared by every rule: paired comparison, each space fitted once
            support, queries = draw_support(rng, y, g, idx, added, k)
            d = Draw(reps, y, idx, support, queries, added)
            for row, (naming, rule) in rules.items():
                got[row].append(figures(d, naming, rule, known))
        for row, values in got.items():
            table[row][f"{k}shot"] = {c: float(np.mean([r[c] for r in values])) for c in values[0]}
    return {
        "added": list(added),
        "known": list(known),
        "n": {k: int(len(v)) for k, v in idx.items()},
        "general": general,
        "weight_grid": grid,
        "table": table,
        "shots": list(shots),
        "draws": draws,
    }


def assemble(dataset: str, per_fold: dict[int, dict]) -> dict:
    """Every fold's rows with its fusion weight chosen on the other folds (:func:`choose_weight`)."""
    general = [n for n in next(iter(per_fold.values()))["general"] if all(n in f["general"] for f in per_fold.values())]
    grids = {fold: f["weight_grid"] for fold, f in per_fold.items()}
    out = {}
    for fold, f in per_fold.items():
        weights = {n: min(TABLE_WEIGHTS, key=lambda w: abs(w - choose_weight(grids, fold, n))) for n in general}
        table = {}
        for row, naming, _ in rules_for(general, weights):
            w = next((weights[n] for n in general if n in row and naming.startswith("fused")), None)
            table[row] = f["table"][f"{row} @w={w}" if w is not None else row]
        out[str(fold)] = {
            **{k: v for k, v in f.items() if k != "table"},
            "weights": weights,
            "table": table,
            "fixed_weight_tables": {
                str(w): {
                    row: f["table"][f"{row} @w={w}"]
                    for row, naming, _ in rules_for(general, {n: w for n in general})
                    if naming.startswith("fused")
                }
                for w in TABLE_WEIGHTS
            },
        }
    first = next(iter(per_fold.values()))
    return {"dataset": dataset, "folds": out, "shots": first["shots"], "draws": first["draws"]}


def _cell(values) -> str:
    a = np.asarray(values, float)
    return f"{a.mean():.3f} ± {a.std():.3f}" if a.size > 1 else f"{a.mean():.3f}"


def markdown(r: dict) -> str:
    folds = r["folds"]
    top = f"{max(r['shots'])}shot"
    lines = []
    rows = list(next(iter(folds.values()))["table"])
    head = (
        "| rule | named (" + " / ".join(f"{k}" for k in r["shots"]) + " shots) | unknown | wrong | ceiling | "
        "known named added | known top-1 | F1-macro | AUROC | recall@1 across tracks |"
    )
    lines += [
        f"Mean ± spread (population std) over {len(folds)} folds ({', '.join(folds)}), {r['draws']} support "
        f"draws; columns after 'named' at {top[:-4]} shots.",
        "",
        head,
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [row]
        cells.append(
            " / ".join(
                f"{np.mean([f['table'][row][f'{k}shot']['named'] for f in folds.values()]):.2f}" for k in r["shots"]
            )
        )
        for c in (
            "named",
            "called_unknown",
            "named_wrongly",
            "ceiling",
            "known_named_added",
            "known_top1",
            "known_f1_macro",
            "unknown_auroc",
        ):
            if c == "named":
                cells[-1] += f" ({_cell([f['table'][row][top]['named'] for f in folds.values()])})"
                continue
            cells.append(_cell([f["table"][row][top][c] for f in folds.values()]))
        cells.append(_cell([f["table"][row]["recall_at_1"] for f in folds.values()]))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for fold, f in folds.items():
        lines.append(
            f"fold {fold} (added {', '.join(f['added'])}; weights {f['weights']}): 5-shot named by rule: "
            + "; ".join(f"{row} {f['table'][row][top]['named']:.2f}" for row in rows)
        )
        grid = "; ".join(
            f"{n}: " + ", ".join(f"w={w} {v['ceiling']:.2f}/{v['val_top1']:.3f}" for w, v in g.items())
            for n, g in f["weight_grid"].items()
        )
        lines.append(f"  weight grid (5-shot ceiling / known val top-1): {grid}")
    return "\n".join(lines)
