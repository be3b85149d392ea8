"""oceanid embed --engine ray: the same vectors as the single-process path, and resume.

One local Ray cluster (2 CPUs) serves the module; the tests skip with one line where
Ray cannot start. The CLI's own start-and-stop of a local cluster is a slow test.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.workspace import RayConfig
from index.catalog.embeddings import load_embeddings

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'oceanid[scale]')")


@pytest.fixture(scope="module")
def ray_cluster():
    try:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=256 * 1024 * 1024,
            logging_level="ERROR",
            log_to_driver=False,
        )
    except Exception as exc:  # noqa: BLE001 - any failure to start means: skip here
        pytest.skip(f"Ray cannot start here: {str(exc).splitlines()[0][:120]}")
    yield
    ray.shutdown()


def _copy_model(ws, src: str, dst: str) -> None:
    shutil.copytree(ws.paths.model(src), ws.paths.model(dst))


def test_ray_equals_single_process_with_a_bad_crop(tiny_ws, ray_cluster):
    from index.catalog.embeddings import crop_rows

    bad = next(r for r in crop_rows(tiny_ws.catalog) if r.crop_path)
    tiny_ws.paths.resolve(bad.crop_path).write_bytes(b"not an image")
    _copy_model(tiny_ws, "tiny", "solo")
    _copy_model(tiny_ws, "tiny", "onray")
    solo = tiny_ws.embed("solo", device="cpu", batch_size=16)
    onray = tiny_ws.embed("onray", batch_size=16, engine="ray", ray=RayConfig(workers=2, shard_rows=40))
    ids_s, vec_s = load_embeddings(tiny_ws.catalog, "solo")
    ids_r, vec_r = load_embeddings(tiny_ws.catalog, "onray")
    np.testing.assert_array_equal(ids_r, ids_s)
    np.testing.assert_allclose(vec_r, vec_s, atol=1e-5)
    assert onray.embedded == solo.embedded == len(ids_s) > 80
    assert (
        [item for item, _ in onray.failed]
        == [item for item, _ in solo.failed]
        == [str(tiny_ws.paths.resolve(bad.crop_path))]
    )
    assert not (tiny_ws.paths.root / "staging" / "embed" / "onray").exists()  # ingested, then cleared


def test_ray_starts_and_fills_the_general_space_by_default(tiny_ws, ray_cluster, monkeypatch):
    """A user's default (the suite sets it off: tests/conftest.py), with a tiny general encoder for speed."""
    import embedder.general as general

    monkeypatch.delenv("OCEANID_GENERAL_SPACE", raising=False)
    real = general.write_general_model
    monkeypatch.setattr(
        general,
        "write_general_model",
        lambda folder, config=None: real(folder, general.GeneralConfig("tiny", "none", 32)),
    )
    report = tiny_ws.embed("tiny", batch_size=16, engine="ray", ray=RayConfig(workers=2, shard_rows=200))
    assert report.embedded == 0  # the tuned space was embedded already: only the general space runs on Ray
    ids_t, _ = load_embeddings(tiny_ws.catalog, "tiny")
    ids_g, vec_g = load_embeddings(tiny_ws.catalog, "tiny.general")
    np.testing.assert_array_equal(ids_g, ids_t)
    assert len(ids_g) > 80 and np.allclose(np.linalg.norm(vec_g, axis=1), 1.0, atol=1e-5)


def test_an_interrupted_run_resumes_from_its_shards(tiny_ws, ray_cluster, tmp_path):
    import pyarrow as pa

    from embedder.model import config_hash
    from embedder.ray_runner import embed_on_ray
    from index.catalog.arrow_io import crops_to_embed

    todo = crops_to_embed(tiny_ws.catalog, "missing-model")  # every crop (no vectors for this id)
    crops = pa.table(
        {
            "annotation_id": todo.column("annotation_id"),
            "path": [str(tiny_ws.paths.resolve(p)) for p in todo.column("crop_path").to_pylist()],
        }
    )
    folder, out = tiny_ws.paths.model("tiny"), tmp_path / "shards"
    config, digest = RayConfig(workers=1, batch_size=16, shard_rows=32), config_hash(folder)
    written = []

    def stop_after_two(path):
        written.append(path)
        if len(written) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_on_ray(crops, folder, out, config, digest, on_shard=stop_after_two)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.parquet")}
    assert len(before) == 2 and not list(out.glob(".tmp-*"))
    result = embed_on_ray(crops, folder, out, config, digest)
    assert result.reused == 64 and result.computed == crops.num_rows - 64
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.parquet") if p.name in before} == before
    assert len(result.shards) == -(-crops.num_rows // 32)


@pytest.mark.slow
def test_cli_starts_and_stops_a_local_cluster(tiny_home, tmp_path):
    """The CLI path without --address in a fresh process: a local cluster up and down again."""
    import subprocess
    import sys

    home = tmp_path / "ws"
    shutil.copytree(tiny_home, home)
    shutil.copytree(home / "models" / "tiny", home / "models" / "onray")
    cmd = [
        sys.executable,
        "-c",
        "from app.cli import main; main()",
        "--home",
        str(home),
        "embed",
        "--model",
        "onray",
        "--engine",
        "ray",
        "--workers",
        "1",
        "--json",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert '"embedded"' in out.stdout
