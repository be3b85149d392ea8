"""Train/val/test splits that never cut a group, plus held-out (unknown) species.

scikit-learn's group splitters make equal folds (StratifiedGroupKFold) or
ignore classes (GroupShuffleSplit); we need arbitrary fractions, stratified by
species, with groups kept whole and frames holding several species, so the
assignment below is a small greedy fill: groups in a seeded random order, each
to the split whose species are furthest below their targets.

Groups are the connected components of "same group key" and "same bytes"
(sha256 of the frame): a picture stored twice, by two sources or twice in one,
is one group, so it can never sit in train and in test. Sources put a shared
dive / video / sequence id into the group key (see ``index/sources/coco.py``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

from index.catalog.catalog import Catalog
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
    duplicate_frames: int = 0  # frames whose bytes equal an earlier frame's (same sha256)
    groups_merged: int = 0  # group keys folded into another group because they share a frame
    changed: int = 0  # crops whose split this run changed (0: the same split again)
    stale_models: list[str] = field(default_factory=list)  # models trained on the replaced split (--force)

    def to_dict(self) -> dict:
        return asdict(self)


def _choose_holdout(
    config: SplitConfig, species: list[str], hints: dict[str, str], rng: np.random.Generator
) -> list[str]:
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
            return sum((targets[s][c] - filled[s][c]) / max(totals[c], 1) * n for c, n in groups[g].items())  # noqa: B023 (used in this iteration only)

        best = max(fractions, key=lambda s: (deficit(s), fractions[s]))
        out[g] = best
        filled[best].update(groups[g])
    return out


def merge_groups(group_keys: list[str], hashes: list[str]) -> tuple[list[int], int]:
    """Connected components of rows linked by an equal group key or an equal sha256.

    Returns (component label per row, how many group keys were merged away).
    """
    from scipy.sparse import coo_matrix  # here, not at import: `oceanid stats` starts fast
    from scipy.sparse.csgraph import connected_components

    n = len(group_keys)
    if n == 0:
        return [], 0
    _, key_ids = np.unique(np.asarray(group_keys, dtype=object), return_inverse=True)
    _, sha_ids = np.unique(np.asarray(hashes, dtype=object), return_inverse=True)
    n_keys = int(key_ids.max()) + 1
    rows = np.arange(n)
    # bipartite graph: row -> its key node, row -> its hash node
    src = np.concatenate([rows, rows])
    dst = np.concatenate([n + key_ids, n + n_keys + sha_ids])
    size = n + n_keys + int(sha_ids.max()) + 1
    graph = coo_matrix((np.ones(2 * n, dtype=np.int8), (src, dst)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    labels = labels[:n]
    return labels.tolist(), n_keys - len(np.unique(labels))


def check_fractions(config: SplitConfig) -> dict[str, float]:
    """The config's train / val / test fractions; InvalidInput unless they are >= 0 and sum to 1."""
    fractions = {"train": config.train, "val": config.val, "test": config.test}
    if any(f < 0 for f in fractions.values()) or not abs(sum(fractions.values()) - 1) < 1e-6:
        raise InvalidInput(f"--train/--val/--test must be >= 0 and sum to 1, got {fractions}")
    return fractions


def make_splits(
    catalog: Catalog, config: SplitConfig, before_write: Callable[[int, object], None] | None = None
) -> SplitSummary:
    """Assign every unpinned crop a split; deterministic for a given config and catalog.

    ``before_write(changed, con)`` is called inside the write transaction, before any crop
    moves, with the number of crops whose split changes: it may raise to refuse the split
    (nothing is written) or write alongside it (``con``). The summary's ``changed`` says it too.
    Raises InvalidInput for bad fractions or names, EmptyIndex when nothing is ingested.
    """
    fractions = {k: v for k, v in check_fractions(config).items() if v > 0}
    rng = np.random.default_rng(config.seed)
    with catalog.read() as con:
        rows = con.execute(
            "SELECT annotation_id, concept, group_key, split_pinned, sha256, split FROM annotations "
            "JOIN images USING (image_id) WHERE coalesce(split, '') <> 'support' "
            "AND coalesce(origin, 'truth') <> 'predicted' ORDER BY annotation_id"
        ).fetchall()
        frames = con.execute("SELECT count(*) - count(DISTINCT sha256) FROM images").fetchone()[0]
        hints = dict(con.execute("SELECT concept, holdout_hint FROM taxa WHERE holdout_hint IS NOT NULL").fetchall())
    if not rows:
        raise EmptyIndex("nothing to split: the catalog has no crops")
    before = {r[0]: r[5] for r in rows}
    labels, merged = merge_groups([r[2] for r in rows], [r[4] for r in rows])
    # a component that holds a pinned crop follows its pinned split (the most common one)
    pins: dict[int, Counter] = defaultdict(Counter)
    for label, r in zip(labels, rows, strict=False):
        if r[3] and r[5] in SPLITS:
            pins[label][r[5]] += 1
    forced = {label: c.most_common(1)[0][0] for label, c in pins.items()}
    rows = [(r[0], r[1], f"component:{label}", r[3]) for label, r in zip(labels, rows, strict=False)]
    per_species = Counter(r[1] for r in rows)
    species = sorted(s for s, n in per_species.items() if n >= config.min_images)
    rest = tuple(config.holdout) == ("rest",)
    held = [] if rest else _choose_holdout(config, species, hints, rng)
    known = [s for s in species if s not in held]
    if config.classes is not None:
        known = sorted(sorted(known, key=lambda s: (-per_species[s], s))[: config.classes])
    if rest:
        held = sorted(set(species) - set(known))
    summary = SplitSummary(
        held_out=held,
        excluded=sorted(set(per_species) - set(known) - set(held)),
        duplicate_frames=int(frames),
        groups_merged=merged,
    )
    keep = set(known)
    groups: dict[str, Counter] = defaultdict(Counter)
    for _, concept, group, pinned in rows:
        if concept in keep and not pinned and int(group.split(":")[1]) not in forced:
            groups[group][concept] += 1
    if config.max_images is not None:
        groups = _cap(groups, config.max_images, rng)
    assignment = _assign(groups, fractions, rng)
    ids, splits = [], []
    for aid, concept, group, pinned in rows:
        if pinned:
            summary.pinned += 1
            continue
        label = int(group.split(":")[1])
        split = "holdout" if concept in held else assignment.get(group) if concept in keep else None
        if split is not None and concept in keep and group not in groups:
            split = None
        if concept in keep and label in forced:
            split = forced[label]
        ids.append(aid)
        splits.append(split)
        summary.counts.setdefault(concept, Counter())[split or "unused"] += 1
    summary.changed = sum(before[i] != s for i, s in zip(ids, splits, strict=False))
    with catalog.write() as con:
        if before_write is not None:
            before_write(summary.changed, con)
        con.register(
            "assigned", pa.table({"annotation_id": pa.array(ids, pa.int64()), "split": pa.array(splits, pa.string())})
        )
        con.execute(
            "UPDATE annotations SET split = assigned.split FROM assigned "
            "WHERE annotations.annotation_id = assigned.annotation_id"
        )
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
