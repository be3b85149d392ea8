"""Train/val/test splits that never cut a group, plus held-out (unknown) species.

scikit-learn's group splitters make equal folds (StratifiedGroupKFold) or
ignore classes (GroupShuffleSplit); we need arbitrary fractions, stratified by
species, with groups kept whole and frames holding several species, so the
assignment below is a small greedy fill: groups in a seeded random order, each
to the split whose species are furthest below their targets.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

from index.catalog import Catalog
from index.errors import EmptyIndex, InvalidInput
from index.records import SPLITS

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class SplitConfig:
    """How ``oceanid split`` chooses species and assigns crops."""

    train: float = 0.7
    val: float = 0.15
    test: float = 0.15
    min_images: int = 1  # species with fewer crops are left out (split NULL)
    max_images: int | None = None  # keep at most this many crops per species (whole groups)
    classes: int | None = None  # keep only the N species with most crops
    holdout: tuple[str, ...] = ()  # species names, one integer N (N at random), or "rest" (all not kept by classes)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SplitSummary:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # species -> split -> crops
    held_out: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    pinned: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _choose_holdout(config: SplitConfig, species: list[str], hints: dict[str, str],
                    rng: np.random.Generator) -> list[str]:
    if not config.holdout:
        return sorted(s for s in species if s in hints)
    if len(config.holdout) == 1 and str(config.holdout[0]).isdigit():
        n = int(config.holdout[0])
        if n >= len(species):
            raise InvalidInput(f"--holdout {n} would leave no known species (only {len(species)})")
        return sorted(rng.choice(sorted(species), size=n, replace=False).tolist())
    unknown = [h for h in config.holdout if h not in species]
    if unknown:
        raise InvalidInput(f"--holdout names unknown species: {', '.join(unknown)}")
    return sorted(config.holdout)


def _assign(groups: dict[str, Counter], fractions: dict[str, float], rng: np.random.Generator) -> dict[str, str]:
    totals: Counter = Counter()
    for counter in groups.values():
        totals.update(counter)
    targets = {s: {c: f * totals[c] for c in totals} for s, f in fractions.items()}
    filled = {s: Counter() for s in fractions}
    order = sorted(groups)
    rng.shuffle(order)
    # big groups first so they cannot overshoot late; ties keep the shuffled order
    order.sort(key=lambda g: -sum(groups[g].values()))
    out = {}
    for g in order:
        def deficit(s: str) -> float:
            return sum((targets[s][c] - filled[s][c]) / max(totals[c], 1) * n for c, n in groups[g].items())
        best = max(fractions, key=lambda s: (deficit(s), fractions[s]))
        out[g] = best
        filled[best].update(groups[g])
    return out


def make_splits(catalog: Catalog, config: SplitConfig) -> SplitSummary:
    """Assign every unpinned crop a split; deterministic for a given config and catalog.

    Raises InvalidInput for bad fractions or names, EmptyIndex when nothing is ingested.
    """
    fractions = {"train": config.train, "val": config.val, "test": config.test}
    if any(f < 0 for f in fractions.values()) or not abs(sum(fractions.values()) - 1) < 1e-6:
        raise InvalidInput(f"--train/--val/--test must be >= 0 and sum to 1, got {fractions}")
    fractions = {k: v for k, v in fractions.items() if v > 0}
    rng = np.random.default_rng(config.seed)
    with catalog.read() as con:
        rows = con.execute(
            "SELECT annotation_id, concept, group_key, split_pinned FROM annotations "
            "WHERE coalesce(split, '') <> 'support' ORDER BY annotation_id"
        ).fetchall()
        hints = dict(con.execute("SELECT concept, holdout_hint FROM taxa WHERE holdout_hint IS NOT NULL").fetchall())
    if not rows:
        raise EmptyIndex("nothing to split: the catalog has no crops")
    per_species = Counter(r[1] for r in rows)
    species = sorted(s for s, n in per_species.items() if n >= config.min_images)
    rest = tuple(config.holdout) == ("rest",)
    held = [] if rest else _choose_holdout(config, species, hints, rng)
    known = [s for s in species if s not in held]
    if config.classes is not None:
        known = sorted(sorted(known, key=lambda s: (-per_species[s], s))[: config.classes])
    if rest:
        held = sorted(set(species) - set(known))
    summary = SplitSummary(held_out=held, excluded=sorted(set(per_species) - set(known) - set(held)))
    keep = set(known)
    groups: dict[str, Counter] = defaultdict(Counter)
    for _, concept, group, pinned in rows:
        if concept in keep and not pinned:
            groups[group][concept] += 1
    if config.max_images is not None:
        groups = _cap(groups, config.max_images, rng)
    assignment = _assign(groups, fractions, rng)
    ids, splits = [], []
    for aid, concept, group, pinned in rows:
        if pinned:
            summary.pinned += 1
            continue
        split = "holdout" if concept in held else assignment.get(group) if concept in keep else None
        if split is not None and concept in keep and group not in groups:
            split = None
        ids.append(aid)
        splits.append(split)
        summary.counts.setdefault(concept, Counter())[split or "unused"] += 1
    with catalog.write() as con:
        con.register("assigned", pa.table({"annotation_id": pa.array(ids, pa.int64()), "split": pa.array(splits, pa.string())}))
        con.execute("UPDATE annotations SET split = assigned.split FROM assigned "
                    "WHERE annotations.annotation_id = assigned.annotation_id")
        con.execute("INSERT OR REPLACE INTO meta VALUES ('split_config', ?)", [json.dumps(config.to_dict())])
    summary.counts = {k: dict(v) for k, v in sorted(summary.counts.items())}
    log.info("split: %d known species, %d held out, %d excluded", len(known), len(held), len(summary.excluded))
    return summary


def _cap(groups: dict[str, Counter], max_images: int, rng: np.random.Generator) -> dict[str, Counter]:
    """Keep whole groups, in random order, until each species reaches ``max_images``."""
    order = sorted(groups)
    rng.shuffle(order)
    kept: dict[str, Counter] = {}
    count: Counter = Counter()
    for g in order:
        if all(count[c] + n <= max_images or count[c] == 0 for c, n in groups[g].items()):
            kept[g] = groups[g]
            count.update(groups[g])
    return kept
