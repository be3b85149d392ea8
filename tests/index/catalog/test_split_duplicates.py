"""No picture on both sides of a split: same bytes (across or within sources) and
frames of one COCO video share a group, and the split reports what it merged."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from index.catalog.catalog import Catalog
from index.catalog.splits import SplitConfig, make_splits, merge_groups
from index.catalog.stats import survey
from index.catalog.taxa import upsert as upsert_taxa
from index.ingest.ingest import ingest_records
from index.records import IngestReport
from index.sources.coco import read_coco
from index.sources.folders import read_folders

SPECIES = ("alpha", "beta")
FRAMES = 30  # per species in the folder source
DUPLICATED = 20  # per species: frames the COCO source holds again, byte for byte
VIDEOS = 12  # COCO videos of 3 new frames each, species alternating


def _png(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(path)
    return path


def _ingest(catalog: Catalog, home: Path, source: str, plan) -> IngestReport:
    catalog.ensure_schema()
    upsert_taxa(catalog, plan.taxa)
    return ingest_records(catalog, home, source, plan.records)


@pytest.fixture
def catalog(tmp_path: Path) -> tuple[Catalog, Path]:
    home = tmp_path / "home"
    folders = tmp_path / "folders"
    coco = tmp_path / "coco"
    for s, name in enumerate(SPECIES):
        for i in range(FRAMES):
            _png(folders / name / f"f{i:02d}.png", 1000 * s + i)
    # one frame repeated inside the folder source under another name (and no group pattern)
    shutil.copyfile(folders / "alpha" / "f00.png", folders / "alpha" / "copy_of_f00.png")
    coco.mkdir()
    images, annotations = [], []

    def add(file: str, concept: int, **extra) -> None:
        n = len(images) + 1
        images.append({"id": n, "file_name": file, **extra})
        annotations.append({"id": n, "image_id": n, "category_id": concept, "bbox": [0, 0, 12, 12]})

    for s, name in enumerate(SPECIES):
        for i in range(DUPLICATED):
            shutil.copyfile(folders / name / f"f{i:02d}.png", coco / f"dup_{name}_{i}.png")
            add(f"dup_{name}_{i}.png", s + 1)
    for v in range(VIDEOS):
        for f in range(3):
            _png(coco / f"video{v}_{f}.png", 50_000 + 10 * v + f)
            add(f"video{v}_{f}.png", v % 2 + 1, video_id=f"dive-{v}")
    (coco / "annotations.json").write_text(
        json.dumps(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": s + 1, "name": n} for s, n in enumerate(SPECIES)],
            }
        )
    )
    cat = Catalog(home / "catalog.duckdb")
    _ingest(cat, home, "folders", read_folders(folders))
    _ingest(cat, home, "coco", read_coco(coco / "annotations.json"))
    return cat


def _rows(catalog: Catalog) -> list[tuple]:
    with catalog.read() as con:
        return con.execute(
            "SELECT a.group_key, i.sha256, i.source_id, a.split FROM annotations a JOIN images i USING (image_id)"
        ).fetchall()


@pytest.mark.parametrize("seed", range(4))
def test_no_frame_group_or_video_crosses_splits(catalog, seed):
    summary = make_splits(catalog, SplitConfig(seed=seed))
    by_sha, by_group = defaultdict(set), defaultdict(set)
    for group, sha, _, split in _rows(catalog):
        by_sha[sha].add(split)
        by_group[group].add(split)
    assert {s for splits in by_sha.values() for s in splits} == {"train", "val", "test"}
    assert [sha for sha, s in by_sha.items() if len(s) > 1] == []
    assert [g for g, s in by_group.items() if len(s) > 1] == []
    # the three frames of each video are one group, keyed by the video
    videos = {g for g in by_group if ":sequence:" in g}
    assert len(videos) == VIDEOS and all(g.endswith(tuple(f"dive-{v}" for v in range(VIDEOS))) for g in videos)
    # 2 * 20 COCO copies of folder frames + 1 copy inside the folder source
    assert summary.duplicate_frames == 2 * DUPLICATED + 1
    assert summary.groups_merged == 2 * DUPLICATED + 1
    assert summary.to_dict()["groups_merged"] == 2 * DUPLICATED + 1
    assert survey(catalog).to_dict()["duplicate_frames"] == 2 * DUPLICATED + 1
    assert survey(catalog).groups_merged == 2 * DUPLICATED + 1


def test_pinned_duplicate_pulls_its_copies_along(catalog):
    with catalog.write() as con:  # pin one COCO copy to test, as `ingest coco --split test` would
        con.execute(
            "UPDATE annotations SET split = 'test', split_pinned = true WHERE annotation_id = ("
            "SELECT min(annotation_id) FROM annotations a JOIN images i USING (image_id) "
            "WHERE i.source = 'coco')"
        )
    make_splits(catalog, SplitConfig(seed=0, train=0.98, val=0.01, test=0.01))
    by_sha = defaultdict(set)
    for _, sha, _, split in _rows(catalog):
        by_sha[sha].add(split)
    assert [s for s in by_sha.values() if len(s) > 1] == []
    assert sum(1 for s in by_sha.values() if s == {"test"}) >= 1


def test_merge_groups_is_connected_components():
    # a-b share a key, b-c share a hash, c-d share a key: one component; e alone
    labels, merged = merge_groups(["k1", "k1", "k2", "k2", "k3"], ["h1", "h2", "h2", "h3", "h4"])
    assert labels[0] == labels[1] == labels[2] == labels[3] != labels[4]
    assert merged == 1
