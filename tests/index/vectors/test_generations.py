"""Index generations: manifest checks, verify, prune, and crash safety under SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from index.errors import EmptyIndex, IndexMismatch, InvalidInput, NotFound
from index.vectors import generation_history as history
from index.vectors import generations as gens
from index.vectors.vector_index import VectorIndex

REPO = Path(__file__).resolve().parents[3]
MODEL = "reef-v1"
HASH = hashlib.sha256(b"test encoder config").hexdigest()  # stands in for embedder.model.config_hash


def make_index(n: int = 50, d: int = 8, seed: int = 0) -> VectorIndex:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return VectorIndex.build(np.arange(1000, 1000 + n), x, kind="flat")


@pytest.fixture
def published(tmp_path: Path) -> Path:
    gens.publish(tmp_path, MODEL, make_index(), HASH)
    return tmp_path


def gen_dir(root: Path, name: str = "gen-0001") -> Path:
    return gens.model_dir(root, MODEL) / name


def test_publish_then_load_round_trip(tmp_path):
    index = make_index()
    name, manifest = gens.publish(tmp_path, MODEL, index, HASH)
    assert name == "gen-0001" and gens.current_generation(tmp_path, MODEL) == name
    assert (manifest.model_id, manifest.dim, manifest.count, manifest.kind, manifest.metric) == (
        MODEL,
        8,
        50,
        "flat",
        "inner_product",
    )
    assert manifest.sha256 == gens.file_sha256(gen_dir(tmp_path) / "index.faiss")
    assert json.loads((gen_dir(tmp_path) / "manifest.json").read_text()) == manifest.to_dict()
    loaded, again = gens.load_current(tmp_path, MODEL, HASH, dim=8)
    assert again == manifest
    q = np.eye(8, dtype=np.float32)[:3]
    assert loaded.search(q, 5) == index.search(q, 5)


def test_second_publish_swaps_current_and_keeps_old(published):
    name, _ = gens.publish(published, MODEL, make_index(70, seed=1), HASH)
    assert name == "gen-0002"
    assert gens.list_generations(published, MODEL) == ["gen-0001", "gen-0002"]
    assert gens.load_current(published, MODEL, HASH)[1].count == 70
    assert gens.verify(gen_dir(published)).count == 50  # the old one is untouched


def test_no_generation_yet_is_empty_index(tmp_path):
    with pytest.raises(EmptyIndex):
        gens.load_current(tmp_path, MODEL, HASH)


@pytest.mark.parametrize(
    ("model_id", "config", "dim", "message"),
    [
        ("other-model", HASH, None, "built by model reef-v1, you are using other-model"),
        (MODEL, hashlib.sha256(b"another config").hexdigest(), None, "you are using config"),
        (MODEL, HASH, 16, "dim 8, your vectors have dim 16"),
    ],
)
def test_wrong_model_config_or_dim_refused(published, model_id, config, dim, message):
    with pytest.raises(IndexMismatch, match=message):
        gens.verify(gen_dir(published), model_id=model_id, model_config_hash=config, dim=dim)


def test_load_current_of_other_model_folder_refused(published):
    other = gens.model_dir(published, "other-model")
    other.mkdir(parents=True)
    os.rename(gen_dir(published), other / "gen-0001")
    (other / "CURRENT").write_text("gen-0001\n")
    with pytest.raises(IndexMismatch, match="built by model reef-v1, you are using other-model"):
        gens.load_current(published, "other-model", HASH)


def _truncate(d: Path) -> None:
    f = d / "index.faiss"
    f.write_bytes(f.read_bytes()[:-100])


def _flip_byte(d: Path) -> None:
    f = d / "index.faiss"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))


def _edit_manifest(d: Path, **changes) -> None:
    m = json.loads((d / "manifest.json").read_text())
    m.update(changes)
    (d / "manifest.json").write_text(json.dumps(m))


CORRUPTIONS = {
    "truncated": (_truncate, "sha256"),
    "altered_byte": (_flip_byte, "sha256"),
    "missing_index": (lambda d: (d / "index.faiss").unlink(), "missing"),
    "missing_manifest": (lambda d: (d / "manifest.json").unlink(), "missing"),
    "malformed_manifest": (lambda d: (d / "manifest.json").write_text("{oops"), "malformed"),
    "count_lies": (lambda d: _edit_manifest(d, count=49), "manifest says"),
    "metric_lies": (lambda d: _edit_manifest(d, metric="l2"), "metric"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupted_generation_detected(published, case):
    corrupt, message = CORRUPTIONS[case]
    corrupt(gen_dir(published))
    with pytest.raises(IndexMismatch, match=message):
        gens.verify(gen_dir(published))
    with pytest.raises(IndexMismatch):
        gens.load_current(published, MODEL, HASH)


@pytest.mark.parametrize("content", ["gen-0009\n", "../../etc\n", ""])
def test_current_pointing_nowhere_detected(published, content):
    (gens.model_dir(published, MODEL) / "CURRENT").write_text(content)
    with pytest.raises(IndexMismatch):
        gens.load_current(published, MODEL, HASH)


@pytest.mark.parametrize("model_id", ["../x", "a/b", "", ".hidden"])
def test_unsafe_model_id_rejected(tmp_path, model_id):
    with pytest.raises(InvalidInput):
        gens.model_dir(tmp_path, model_id)


def test_rollback_makes_the_previous_generation_live(tmp_path):
    for seed in range(3):
        gens.publish(tmp_path, MODEL, make_index(seed=seed), HASH)
    assert history.rollback(tmp_path, MODEL, HASH, 8) == "gen-0002"
    assert gens.current_generation(tmp_path, MODEL) == "gen-0002"
    assert history.rollback(tmp_path, MODEL, HASH, 8) == "gen-0001"
    with pytest.raises(NotFound, match="no generation before gen-0001"):
        history.rollback(tmp_path, MODEL, HASH, 8)
    with pytest.raises(IndexMismatch):  # the previous one is verified against the expected model
        gens.set_current(tmp_path, MODEL, "gen-0003")
        history.rollback(tmp_path, MODEL, hashlib.sha256(b"another config").hexdigest(), 8)
    assert gens.current_generation(tmp_path, MODEL) == "gen-0003"
    with pytest.raises(EmptyIndex):
        history.rollback(tmp_path, "never-published")


def test_prune_keeps_three_by_default(tmp_path):
    for seed in range(5):
        gens.publish(tmp_path, MODEL, make_index(seed=seed), HASH)
    assert history.prune(tmp_path, MODEL) == ["gen-0001", "gen-0002"]
    assert gens.list_generations(tmp_path, MODEL) == ["gen-0003", "gen-0004", "gen-0005"]


def test_manifest_records_the_content_digest(tmp_path):
    _, manifest = gens.publish(tmp_path, MODEL, make_index(), HASH, content="abc123")
    assert manifest.content == "abc123" and gens.read_manifest(tmp_path / "indexes" / MODEL / "gen-0001") == manifest


def test_prune_keeps_last_n_and_never_the_live_one(published):
    for seed in range(1, 4):
        gens.publish(published, MODEL, make_index(seed=seed), HASH)
    gens.set_current(published, MODEL, "gen-0001")  # roll back to the oldest
    removed = history.prune(published, MODEL, keep=2)
    assert removed == ["gen-0002"]
    assert gens.list_generations(published, MODEL) == ["gen-0001", "gen-0003", "gen-0004"]
    assert gens.load_current(published, MODEL, HASH)[1].count == 50


# ---- crash safety ---------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from index.vectors import generations as gens
    from index.vectors.vector_index import VectorIndex
    root, stop_at, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = VectorIndex.build(np.arange(n), x, kind="flat")
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


def assert_live_generation_valid(root: Path, allowed_counts: set[int]) -> None:
    name = gens.current_generation(root, MODEL)
    assert name is not None
    index, manifest = gens.load_current(root, MODEL, HASH, dim=8)
    assert manifest.count in allowed_counts and index.ntotal == manifest.count
    assert gens.verify(gens.model_dir(root, MODEL) / name) == manifest
    # the system recovers: a later rebuild publishes and goes live
    new_name, _ = gens.publish(root, MODEL, make_index(33, seed=4), HASH)
    assert gens.load_current(root, MODEL, HASH)[1].count == 33
    assert gens.current_generation(root, MODEL) == new_name
    history.prune(root, MODEL, keep=1)
    assert not list(gens.model_dir(root, MODEL).glob(".tmp-*"))  # crash leftovers cleaned


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_at_each_stage_leaves_a_valid_live_generation(published, stage):
    child = run_child(published, stage, 60)
    try:
        assert child.stdout.readline().strip() == "READY"
        assert child.stdout.readline().strip() == f"AT {stage}"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    live = gens.current_generation(published, MODEL)
    assert live == ("gen-0002" if stage == "current_swapped" else "gen-0001")
    assert_live_generation_valid(published, {50, 60})


@pytest.mark.parametrize("delay_ms", [0, 5, 20, 60])
def test_sigkill_after_random_delay_leaves_a_valid_live_generation(published, delay_ms):
    child = run_child(published, "never", 200_000)  # ~6 MB file so the kill can land mid-write
    try:
        assert child.stdout.readline().strip() == "READY"
        time.sleep(delay_ms / 1000)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert_live_generation_valid(published, {50, 200_000})
