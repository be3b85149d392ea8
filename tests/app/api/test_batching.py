"""Serve batches concurrent /identify requests (app/workspace/batching.py) with back-pressure."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.api import ApiSettings, create_app
from app.workspace import Batcher, Overloaded, Workspace


def fake_images(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (4, 4), (i % 256, 0, 0)) for i in range(n)]


def red(images) -> np.ndarray:
    """A stand-in encoder: each image's red value, so every caller can check it got its own rows."""
    return np.asarray([[im.getpixel((0, 0))[0], 1.0] for im in images], dtype=np.float32)


def test_concurrent_callers_share_forward_passes_and_keep_their_rows():
    # would fail: a batcher that handed rows out in arrival order of batches, or ran one pass per caller
    batcher = Batcher(red, window_s=0.05, max_batch=64)
    images = fake_images(16)
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda i: batcher.embed([images[i], images[(i + 1) % 16]]), range(16)))
    for i, vectors in enumerate(got):
        assert vectors[:, 0].tolist() == [i, (i + 1) % 16]
    assert batcher.batches < 16
    batcher.close()


def test_a_full_queue_refuses_at_once_and_nothing_hangs():
    release = threading.Event()

    def slow(images):
        release.wait(5)
        return red(images)

    batcher = Batcher(slow, window_s=0, max_batch=1, max_queue=2)
    with ThreadPoolExecutor(4) as pool:
        running = pool.submit(batcher.embed, fake_images(1))  # taken by the worker, blocked in slow()
        time.sleep(0.2)
        queued = [pool.submit(batcher.embed, fake_images(1)) for _ in range(2)]
        time.sleep(0.2)
        start = time.monotonic()
        with pytest.raises(Overloaded, match="waiting"):
            batcher.embed(fake_images(1))
        assert time.monotonic() - start < 0.5
        release.set()
        assert all(f.result(5).shape == (1, 2) for f in [running, *queued])
    batcher.close()


def test_a_request_past_its_time_limit_gets_overloaded_and_an_encoder_error_reaches_its_callers():
    release = threading.Event()
    batcher = Batcher(lambda images: release.wait(5) and red(images), window_s=0, max_batch=1)
    threading.Thread(target=batcher.embed, args=(fake_images(1),), daemon=True).start()
    time.sleep(0.1)
    with pytest.raises(Overloaded, match="within"):
        batcher.embed(fake_images(1), timeout_s=0.2)
    release.set()
    batcher.close()

    def broken(images):
        raise ValueError("encoder broke")

    failing = Batcher(broken, window_s=0.01)
    with pytest.raises(ValueError, match="encoder broke"):
        failing.embed(fake_images(2))
    failing.close()


@pytest.fixture(scope="module")
def served(tiny_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("batching") / "home"
    shutil.copytree(tiny_home, home)
    crops = [p.read_bytes() for p in sorted((home / "crops").rglob("*.png"))[:16]]
    return home, crops


def test_sixteen_concurrent_clients_get_the_one_at_a_time_answers(served):
    home, crops = served
    ws = Workspace(home)
    alone = [ws.identify([c], k=3, names=["c.png"])[0].to_dict() for c in crops]  # the API default k
    with TestClient(create_app(ws, ApiSettings(batch_window_ms=20))) as client:

        def post(i):
            return client.post("/identify", files={"file": ("c.png", crops[i], "image/png")})

        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(post, range(16)))
    assert [r.status_code for r in responses] == [200] * 16
    for i, response in enumerate(responses):
        got, want = response.json()[0], alone[i]
        assert (got["species"], got["closest"], [t[0] for t in got["top"]]) == (
            want["species"],
            want["closest"],
            [t[0] for t in want["top"]],
        )
        np.testing.assert_allclose([t[1] for t in got["top"]], [t[1] for t in want["top"]], atol=1e-5)


def test_a_full_encoder_queue_is_503_with_retry_after(served, monkeypatch):
    home, crops = served
    ws = Workspace(home)
    release = threading.Event()
    engine = ws.engine()
    real = engine.embed

    def slow(images):
        release.wait(10)
        return real(images)

    monkeypatch.setattr(engine, "embed", slow)
    with TestClient(create_app(ws, ApiSettings(batch_window_ms=0, max_batch=1, max_queue=1))) as client:
        post = lambda: client.post("/identify", files={"file": ("c.png", crops[0], "image/png")})  # noqa: E731
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(post)  # in the encoder
            time.sleep(0.5)
            second = pool.submit(post)  # waiting
            time.sleep(0.5)
            refused = post()
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            assert refused.json()["type"] == "Overloaded"
            release.set()
            assert first.result(20).status_code == 200 and second.result(20).status_code == 200
