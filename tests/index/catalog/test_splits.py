"""Splits: groups never cut, stratified fractions, pinned crops kept, held-out species."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from conftest import write_image

from index.catalog.splits import SplitConfig
from index.catalog.taxa import upsert as upsert_taxa
from index.errors import EmptyIndex, InvalidInput
from index.records import Taxon


@pytest.fixture
def many(workspace, tmp_path):
    root = tmp_path / "many"
    for c, name in enumerate(["a", "b", "c", "d", "e"]):
        for g in range(20):
            for f in range(1 + (g % 3)):
                write_image(root / name / f"fish_{c}{g:02d}_{f}.png", size=(8, 8), seed=1000 * c + 10 * g + f)
    workspace.ingest_folders(root, group_pattern=r"fish_(\d+)_")
    return workspace


def assignments(ws):
    with ws.catalog.read() as con:
        return con.execute("SELECT annotation_id, concept, group_key, split FROM annotations ORDER BY 1").fetchall()


def test_groups_never_cut_and_fractions_close(many):
    many.split(SplitConfig(seed=3))
    rows = assignments(many)
    per_group = defaultdict(set)
    for _, _, group, split in rows:
        per_group[group].add(split)
    assert all(len(s) == 1 for s in per_group.values())
    per_species = defaultdict(Counter)
    for _, concept, _, split in rows:
        per_species[concept][split] += 1
    for counts in per_species.values():
        total = sum(counts.values())
        assert abs(counts["train"] / total - 0.7) < 0.12
        assert counts["val"] > 0 and counts["test"] > 0


def test_deterministic_per_seed(many):
    many.split(SplitConfig(seed=1))
    first = assignments(many)
    many.split(SplitConfig(seed=1))
    assert assignments(many) == first
    many.split(SplitConfig(seed=2))
    assert assignments(many) != first


def test_holdout_by_name_and_count(many):
    summary = many.split(SplitConfig(holdout=("b", "d")))
    assert summary.held_out == ["b", "d"]
    assert {r[3] for r in assignments(many) if r[1] in ("b", "d")} == {"holdout"}
    summary = many.split(SplitConfig(holdout=("2",), seed=5))
    assert len(summary.held_out) == 2
    with pytest.raises(InvalidInput, match="unknown species"):
        many.split(SplitConfig(holdout=("zebra",)))


def test_holdout_rest_holds_out_what_classes_leaves(many):
    summary = many.split(SplitConfig(classes=3, holdout=("rest",)))
    assert len(summary.held_out) == 2 and summary.excluded == []
    assert {r[3] for r in assignments(many) if r[1] in summary.held_out} == {"holdout"}


def test_holdout_hints_are_the_default(many):
    upsert_taxa(many.catalog, [Taxon("c")], hints={"c": "far"})
    assert many.split(SplitConfig()).held_out == ["c"]


def test_classes_and_max_images(many):
    summary = many.split(SplitConfig(classes=2, max_images=20))
    kept = {r[1] for r in assignments(many) if r[3] in ("train", "val", "test")}
    assert len(kept) == 2 and len(summary.excluded) == 3
    counts = Counter(r[1] for r in assignments(many) if r[3] in ("train", "val", "test"))
    assert all(n <= 20 for n in counts.values())


def test_pinned_crops_left_alone(workspace, tmp_path, many):
    root = tmp_path / "mine"
    for i in range(5):
        write_image(root / "a" / f"x{i}.png", size=(8, 8), seed=9000 + i)
    many.ingest_folders(root, split="test")
    summary = many.split(SplitConfig())
    assert summary.pinned == 5
    with many.catalog.read() as con:
        pinned = con.execute("SELECT DISTINCT split FROM annotations WHERE split_pinned").fetchall()
    assert pinned == [("test",)]


@pytest.mark.parametrize(
    "config", [SplitConfig(train=0.9, val=0.2, test=0.1), SplitConfig(train=-0.1, val=0.6, test=0.5)]
)
def test_bad_fractions(many, config):
    with pytest.raises(InvalidInput, match="sum to 1"):
        many.split(config)


def test_split_of_empty_catalog(workspace):
    workspace.catalog.ensure_schema()
    with pytest.raises(EmptyIndex):
        workspace.split(SplitConfig())
