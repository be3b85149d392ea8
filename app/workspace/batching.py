"""Gathering concurrent queries into one forward pass: what a server under load runs.

Eight clients sending one crop each used to queue on the encoder one image at a time. A
:class:`Batcher` (one per model) instead collects the images of the requests that arrive within
``window_s`` of the first (at most ``max_batch`` images), embeds them in ONE forward pass on its
own thread (one batch at a time per model), and hands each request its own rows. Everything
after the vectors (prototype cosines, verdicts, taxa) stays per request, so each request keeps
its own answer, errors and time limit.

Back-pressure: at most ``max_queue`` images wait; a request that would pass it raises
:class:`Overloaded` at once (the HTTP face answers 503 with ``Retry-After``), never an unbounded
queue; a request whose ``timeout_s`` runs out while waiting raises it too. Window and batch
sizes: measured by bench/serve_batching.py (bench/RESULTS.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from index.errors import OceanidError

log = logging.getLogger(__name__)

# How long the first request of a batch waits for others. 0: no wait, a batch is what queued while the
# previous forward pass ran. Measured (bench/serve_batching.py, demo home, 2 idle cores, onnxruntime, 8
# clients): windows 1 / 3 / 10 ms gave 75-76 requests/s against 82-84 at 0 ms, and a slower single client;
# raise it (OCEANID_API_BATCH_WINDOW_MS) where a forward pass of many images is cheaper per image (a GPU).
WINDOW_S = 0.0
MAX_BATCH = 32  # images in one forward pass
MAX_QUEUE = 256  # images waiting at most; more is 503 + Retry-After
TIMEOUT_S = 30.0  # how long one request may wait for its vectors


class Overloaded(OceanidError):
    """The encoder's queue is full, or a request waited past its time limit (HTTP 503)."""

    hint = "the server is busy; retry after the time in Retry-After"
    retry_after_s: int = 1


@dataclass
class _Job:
    images: Sequence[Image.Image]
    done: threading.Event = field(default_factory=threading.Event)
    vectors: np.ndarray | None = None
    error: BaseException | None = None
    abandoned: bool = False


class Batcher:
    """Embeds the images of concurrent callers together (see the module docstring).

    ``embed``: images -> ``(n, d) float32`` (the engine's encoder); it runs on this batcher's
    one worker thread, a batch at a time."""

    def __init__(
        self,
        embed: Callable[[list[Image.Image]], np.ndarray],
        window_s: float = WINDOW_S,
        max_batch: int = MAX_BATCH,
        max_queue: int = MAX_QUEUE,
        name: str = "model",
    ) -> None:
        if window_s < 0 or max_batch < 1 or max_queue < 1:
            raise ValueError("window_s >= 0, max_batch >= 1 and max_queue >= 1")
        self.embed_fn, self.window_s, self.max_batch, self.max_queue = embed, window_s, max_batch, max_queue
        self._jobs: deque[_Job] = deque()
        self._waiting = 0  # images queued
        self._cond = threading.Condition()
        self._closed = False
        self.batches = 0  # forward passes run (tests and benchmarks read it)
        self._worker = threading.Thread(target=self._run, name=f"oceanid-batcher-{name}", daemon=True)
        self._worker.start()

    def embed(self, images: Sequence[Image.Image], timeout_s: float = TIMEOUT_S) -> np.ndarray:
        """``images`` -> their ``(n, d) float32`` vectors, embedded in a batch with other callers'.

        Raises:
            Overloaded: the queue would pass ``max_queue`` images (unless it is empty), or
                ``timeout_s`` passed before the vectors came.
            Whatever the encoder raised for the batch this call was in.
        """
        job = _Job(list(images))
        with self._cond:
            if self._closed:
                raise Overloaded("the server is shutting down")
            if self._waiting and self._waiting + len(job.images) > self.max_queue:
                raise Overloaded(f"{self._waiting} images are waiting for the encoder (at most {self.max_queue})")
            self._jobs.append(job)
            self._waiting += len(job.images)
            self._cond.notify_all()
        if not job.done.wait(timeout_s):
            with self._cond:
                job.abandoned = True
                if job in self._jobs:  # not started: take it out of the queue
                    self._jobs.remove(job)
                    self._waiting -= len(job.images)
            raise Overloaded(f"no vectors within {timeout_s:g} s")
        if job.error is not None:
            raise job.error
        assert job.vectors is not None
        return job.vectors

    def close(self) -> None:
        """Stop the worker after the batch it is running; waiting callers get Overloaded."""
        with self._cond:
            self._closed = True
            for job in self._jobs:
                job.error = Overloaded("the server is shutting down")
                job.done.set()
            self._jobs.clear()
            self._cond.notify_all()

    def _take(self) -> list[_Job] | None:
        """The next batch: the first job, and those that arrive within the window, up to max_batch."""
        with self._cond:
            while not self._jobs and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            deadline = time.monotonic() + self.window_s
            while sum(len(j.images) for j in self._jobs) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch, size = [], 0
            while self._jobs and (not batch or size + len(self._jobs[0].images) <= self.max_batch):
                job = self._jobs.popleft()
                batch.append(job)
                size += len(job.images)
            self._waiting -= size
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            with self._cond:
                live = [job for job in batch if not job.abandoned]
            images = [im for job in live for im in job.images]
            try:
                vectors = self.embed_fn(images) if images else None
                self.batches += 1
            except BaseException as exc:  # noqa: BLE001 - handed to every caller of this batch
                for job in live:
                    job.error = exc
                    job.done.set()
                continue
            row = 0
            for job in live:
                job.vectors = np.ascontiguousarray(vectors[row : row + len(job.images)])
                row += len(job.images)
                job.done.set()


def embed_items(batcher: Batcher, items: Sequence, names: Sequence[str], timeout_s: float = TIMEOUT_S) -> np.ndarray:
    """The ``(n, d)`` vectors of identify's ``items`` (paths, bytes, PIL images) through ``batcher``,
    for :func:`app.workspace.identify.identify`'s ``vectors``: an item that does not decode gets a
    zero row (identify reports it as unreadable and never reads the row)."""
    from app.workspace.identify import decode
    from index.errors import BadImage

    images, rows = [], []
    for n, item in enumerate(items):
        try:
            images.append(decode(item, names[n]))
            rows.append(n)
        except BadImage:
            continue
    if not images:
        return np.zeros((len(items), 0), np.float32)
    vectors = batcher.embed(images, timeout_s)
    out = np.zeros((len(items), vectors.shape[1]), np.float32)
    out[rows] = vectors
    return out
