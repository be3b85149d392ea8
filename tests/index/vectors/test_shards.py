"""Sharded index (index/vectors/shards.py): results equal one index's, filtered and unfiltered; sharded
generations verify, roll back and survive SIGKILL mid-rebuild; IVF-PQ memory and recall."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from index.errors import IndexMismatch, InvalidInput
from index.vectors import generation_history as history
from index.vectors import generations as gens
from index.vectors.shards import ShardedIndex, merge_hits, shard_of
from index.vectors.vector_index import IndexConfig, VectorIndex

REPO = Path(__file__).resolve().parents[3]
MODEL = "reef-v1"
HASH = hashlib.sha256(b"test encoder config").hexdigest()


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def data(n: int = 3000, d: int = 16, seed: int = 0, clusters: int = 0):
    """n random unit vectors (optionally around ``clusters`` centres) under scattered ids, and 25 queries."""
    rng = np.random.default_rng(seed)
    if clusters:
        centres = rng.standard_normal((clusters, d))
        x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, d))
    else:
        x = rng.standard_normal((n, d))
    ids = rng.choice(10 * n, n, replace=False).astype(np.int64)
    q = unit(x[:25] + 0.2 * rng.standard_normal((25, d)))
    return ids, unit(x), q, rng


def same_hits(a, b) -> bool:
    """Same ids in the same order, scores equal to float rounding (gathered vs faiss-scored)."""
    return len(a) == len(b) and all(
        [h.id for h in x] == [h.id for h in y] and np.allclose([h.score for h in x], [h.score for h in y], atol=1e-5)
        for x, y in zip(a, b, strict=False)
    )


def brute(ids, x, q, k, allowed=None):
    keep = np.ones(len(ids), bool) if allowed is None else np.isin(ids, allowed)
    sims = q @ x[keep].T
    order = np.argsort(-sims, axis=1)[:, :k]
    return [[int(i) for i in ids[keep][row]] for row in order]


def test_shard_of_is_stable_balanced_and_in_range():
    ids = np.arange(100_000, dtype=np.int64)  # one long run of ids, as a single source gives
    where = shard_of(ids, 8)
    assert where.min() == 0 and where.max() == 7
    assert np.array_equal(where, shard_of(ids.copy(), 8))
    counts = np.bincount(where)
    assert counts.min() > 0.95 * 100_000 / 8 and counts.max() < 1.05 * 100_000 / 8
    assert not np.array_equal(where, ids % 8)  # a hash, not the id modulo n


@pytest.mark.parametrize("shards", [2, 5])
def test_sharded_flat_equals_one_flat_index_filtered_and_unfiltered(shards):
    ids, x, q, rng = data()
    one = VectorIndex.build(ids, x, kind="flat")
    sharded = ShardedIndex.build(ids, x, shards, kind="flat")
    assert sharded.ntotal == one.ntotal and sorted(sharded.ids().tolist()) == sorted(ids.tolist())
    assert all(s.ntotal for s in sharded.shards)
    for k in (1, 10, 50):
        got = sharded.search(q, k)
        assert same_hits(got, one.search(q, k))
        assert [[h.id for h in row] for row in got] == brute(ids, x, q, k)
    wide = ids[rng.random(ids.size) < 0.6]  # searched inside faiss with a selector
    narrow = ids[rng.random(ids.size) < 0.02]  # gathered and scored exactly
    tiny = np.concatenate([ids[:3], [10**9]])  # fewer than k, plus an id no shard holds
    for allowed in (wide, narrow, tiny):
        got = sharded.search(q, 10, allowed_ids=allowed)
        assert same_hits(got, one.search(q, 10, allowed_ids=allowed))
        assert [[h.id for h in row] for row in got] == brute(ids, x, q, 10, allowed)
    assert [len(row) for row in sharded.search(q, 10, allowed_ids=tiny)] == [3] * len(q)


def test_sharded_ivf_filtered_is_as_exact_as_one_ivf_index():
    """Filters the planner scores exactly (gathered, or every holding list scanned) give the
    exact answer from every shard, so the merged answer equals one index's and brute force."""
    ids, x, q, rng = data(n=4000, clusters=20)
    one = VectorIndex.build(ids, x, kind="ivf", config=IndexConfig(nlist=40, nprobe=4))
    sharded = ShardedIndex.build(ids, x, 3, kind="ivf", config=IndexConfig(nlist=20, nprobe=4))
    assert sharded.kind == "ivf"
    allowed = ids[rng.random(ids.size) < 0.1]
    for index in (one, sharded):
        assert [[h.id for h in row] for row in index.search(q, 10, allowed_ids=allowed)] == brute(
            ids, x, q, 10, allowed
        )


def test_a_prepared_filter_is_matched_once_per_shard():
    ids, x, q, rng = data()
    sharded = ShardedIndex.build(ids, x, 4, kind="flat")
    from index.vectors.filter_cache import AllowedIds

    allowed = AllowedIds.of(ids[rng.random(ids.size) < 0.3])
    first = sharded.search(q, 5, allowed_ids=allowed)
    assert set(allowed.cache) == {s.version for s in sharded.shards}  # one match kept per shard
    assert sharded.search(q, 5, allowed_ids=allowed) == first


def test_add_and_remove_go_to_the_hash_shard_and_keep_results_equal():
    ids, x, q, _ = data()
    sharded = ShardedIndex.build(ids[:2500], x[:2500], 3, kind="flat")
    copy = sharded.copy()
    copy.add(ids[2500:], x[2500:])
    assert sharded.ntotal == 2500 and copy.ntotal == 3000  # the copy is independent
    for s, shard in enumerate(copy.shards):
        assert np.all(shard_of(shard.ids(), 3) == s)
    assert same_hits(copy.search(q, 10), VectorIndex.build(ids, x, kind="flat").search(q, 10))
    with pytest.raises(InvalidInput, match="already in the index"):
        copy.add(ids[:2], x[:2])
    assert copy.ntotal == 3000  # nothing added to any shard
    assert copy.remove(np.concatenate([ids[:100], [10**9]])) == 100
    assert same_hits(copy.search(q, 10), VectorIndex.build(ids[100:], x[100:], kind="flat").search(q, 10))


def test_merge_hits_takes_the_best_k_over_shards():
    from index.vectors.faiss_calls import Hit

    merged = merge_hits([[Hit(4, 0.9), Hit(2, 0.1)], [Hit(7, 0.5), Hit(1, 0.5)], []], 3)
    assert merged == [Hit(4, 0.9), Hit(1, 0.5), Hit(7, 0.5)]


def test_bad_shard_counts_are_refused():
    ids, x, _, _ = data(n=50)
    for bad in (0, 1, 257, True):
        with pytest.raises(InvalidInput):
            ShardedIndex.build(ids, x, bad)


# ---- sharded generations ----------------------------------------------------------


def test_sharded_generation_round_trip_verify_and_rollback(tmp_path):
    ids, x, q, _ = data()
    gens.publish(tmp_path, MODEL, VectorIndex.build(ids, x, kind="flat"), HASH)
    sharded = ShardedIndex.build(ids, x, 4, kind="flat")
    name, manifest = gens.publish(tmp_path, MODEL, sharded, HASH)
    folder = gens.model_dir(tmp_path, MODEL) / name
    assert manifest.shards == 4 and manifest.count == 3000 and manifest.kind == "flat"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"] + [f"shard-00{i}" for i in range(4)]
    shard_manifests = [gens.read_manifest(folder / f"shard-00{i}") for i in range(4)]
    assert sum(m.count for m in shard_manifests) == 3000
    assert manifest.sha256 == gens.shards_sha256([m.sha256 for m in shard_manifests])
    loaded, again = gens.load_current(tmp_path, MODEL, HASH, dim=16)
    assert again == manifest and isinstance(loaded, ShardedIndex)
    assert same_hits(loaded.search(q, 10), sharded.search(q, 10))
    assert gens.verify(folder, MODEL, HASH, 16) == manifest
    assert history.rollback(tmp_path, MODEL, HASH) == "gen-0001"
    assert gens.load_current(tmp_path, MODEL, HASH)[1].shards == 0


@pytest.mark.parametrize("case", ["altered_shard", "missing_shard", "shard_manifest"])
def test_a_damaged_shard_fails_verification(tmp_path, case):
    ids, x, _, _ = data(n=400)
    name, _ = gens.publish(tmp_path, MODEL, ShardedIndex.build(ids, x, 3, kind="flat"), HASH)
    shard = gens.model_dir(tmp_path, MODEL) / name / "shard-001"
    if case == "altered_shard":
        with open(shard / "index.faiss", "r+b") as f:
            f.seek(-8, os.SEEK_END)
            f.write(b"\x00" * 8)
    elif case == "missing_shard":
        shutil.rmtree(shard)
    else:  # a shard's own manifest and file replaced consistently: the top sha256 catches it
        other = ShardedIndex.build(ids[::-1].copy(), x[::-1].copy(), 3, kind="flat")
        gens.publish(tmp_path / "other", MODEL, other, HASH)
        src = gens.model_dir(tmp_path / "other", MODEL) / "gen-0001" / "shard-001"
        bad = VectorIndex.build(ids[:10], x[:10], kind="flat")
        bad.save(src / "index.faiss")
        shutil.rmtree(shard)
        shutil.copytree(src, shard)
        manifest = gens.read_manifest(shard)
        import dataclasses
        import json

        fixed = dataclasses.replace(manifest, count=10, sha256=gens.file_sha256(shard / "index.faiss"))
        (shard / "manifest.json").write_text(json.dumps(fixed.to_dict()))
    with pytest.raises(IndexMismatch):
        gens.verify(gens.model_dir(tmp_path, MODEL) / name)


CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from index.vectors import generations as gens
    from index.vectors.shards import ShardedIndex
    root, stop_at, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = ShardedIndex.build(np.arange(n), x, 3, kind="flat")
    def hook(stage):
        if stage == stop_at:
            print("AT", stage, flush=True)
            time.sleep(60)
    print("READY", flush=True)
    gens.publish(root, "reef-v1", index, sys.argv[4], on_stage=hook)
    print("DONE", flush=True)
    """
)
STAGES = [
    "tmp_created",
    "shard_written_0",
    "shard_written_1",
    "index_written",
    "manifest_written",
    "renamed",
    "verified",
    "current_tmp_written",
    "current_swapped",
]


def run_child(root: Path, stop_at: str, n: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), stop_at, str(n), HASH],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


@pytest.fixture
def published(tmp_path: Path) -> Path:
    ids, x, _, _ = data(n=50, d=8)
    gens.publish(tmp_path, MODEL, ShardedIndex.build(ids, x, 2, kind="flat"), HASH)
    return tmp_path


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_during_a_sharded_rebuild_leaves_the_previous_generation_serving(published, stage):
    child = run_child(published, stage, 60)
    try:
        assert child.stdout.readline().strip() == "READY"
        assert child.stdout.readline().strip() == f"AT {stage}"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    live = gens.current_generation(published, MODEL)
    assert live == ("gen-0002" if stage == "current_swapped" else "gen-0001")
    index, manifest = gens.load_current(published, MODEL, HASH, dim=8)
    assert isinstance(index, ShardedIndex) and index.ntotal == manifest.count == (60 if live == "gen-0002" else 50)
    assert index.search(unit(np.eye(8)[:2]), 3)  # it serves
    ids, x, _, _ = data(n=33, d=8, seed=4)  # and a later rebuild publishes and goes live
    gens.publish(published, MODEL, ShardedIndex.build(ids, x, 2, kind="flat"), HASH)
    assert gens.load_current(published, MODEL, HASH)[1].count == 33
    history.prune(published, MODEL, keep=1)
    assert not list(gens.model_dir(published, MODEL).glob(".tmp-*"))


# ---- IVF-PQ --------------------------------------------------------------------


def test_ivfpq_stores_fewer_bytes_per_vector_and_keeps_recall(tmp_path):
    ids, x, q, _ = data(n=3000, d=16, clusters=30)
    flat = VectorIndex.build(ids, x, kind="flat")
    pq = VectorIndex.build(ids, x, kind="ivfpq", config=IndexConfig(pq_bytes=8, nlist=30, nprobe=30))
    assert pq.kind == "ivfpq" and pq.faiss_index.code_size == 8
    flat.save(tmp_path / "flat.faiss")
    pq.save(tmp_path / "pq.faiss")
    per_flat = (tmp_path / "flat.faiss").stat().st_size / 3000
    per_pq = (tmp_path / "pq.faiss").stat().st_size / 3000
    # flat: 64 vector bytes + 8 id bytes; IVF-PQ: 8 code bytes + 8 id bytes + 16 direct-map bytes,
    # plus its codebooks and centroids (fixed, ~6 bytes a vector at this size)
    assert per_flat >= 4 * 16 + 8 and per_pq < 40 and per_pq < per_flat / 1.8
    exact = [{h.id for h in row} for row in flat.search(q, 10)]
    got = [{h.id for h in row} for row in pq.search(q, 10)]
    recall = np.mean([len(a & b) / 10 for a, b in zip(exact, got, strict=False)])
    assert recall >= 0.6, recall  # 0.75 measured; random codes give ~0
    allowed = ids[:500]
    assert all(h.id in set(allowed.tolist()) for row in pq.search(q, 10, allowed_ids=allowed) for h in row)
    name, manifest = gens.publish(tmp_path, MODEL, pq, HASH)
    assert manifest.kind == "ivfpq" and gens.load_current(tmp_path, MODEL, HASH)[0].kind == "ivfpq"


def test_ivfpq_needs_enough_vectors_to_train():
    ids, x, _, _ = data(n=200)
    with pytest.raises(InvalidInput, match="at least 256 vectors"):
        VectorIndex.build(ids, x, kind="ivfpq")
