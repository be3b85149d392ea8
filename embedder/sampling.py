"""Balanced P x K batches that can be resumed: pml's MPerClassSampler, made
deterministic per epoch.

pml draws from the module-global ``common_functions.NUMPY_RANDOM`` and shuffles
its class list in place, so its order depends on every earlier epoch. This
wrapper gives each epoch its own ``RandomState`` derived from ``(seed, epoch)``
and a fresh class list, so epoch ``e`` yields the same batches whether the run
was interrupted or not: a checkpoint only records ``{"seed", "epoch"}``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from pytorch_metric_learning.samplers import MPerClassSampler
from pytorch_metric_learning.utils import common_functions as c_f
from torch.utils.data import Sampler

from index.errors import InvalidInput


def epoch_seed(seed: int, epoch: int) -> int:
    """A 32-bit seed for ``epoch`` of a run seeded ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class PKSampler(Sampler[int]):
    """Yields ``length`` indices (a multiple of ``p * k``); every consecutive chunk
    of ``p * k`` holds ``p`` distinct classes with ``k`` samples each (classes with
    fewer than ``k`` samples are drawn with replacement).

    Raises:
        InvalidInput: fewer than ``p`` classes, ``k < 1`` or ``length < p * k``.
    """

    def __init__(self, labels: Sequence[int], p: int, k: int, length: int, seed: int = 0) -> None:
        classes = len(set(int(x) for x in labels))
        if k < 1 or p < 1:
            raise InvalidInput(f"batch P and K must be >= 1, got P={p}, K={k}")
        if classes < p:
            raise InvalidInput(f"P x K batches need at least P={p} classes, the data has {classes}")
        if length < p * k:
            raise InvalidInput(f"an epoch of {length} samples is shorter than one {p}x{k} batch")
        self.labels = np.asarray(labels, dtype=np.int64)
        self.p, self.k, self.seed, self.epoch, self.start = p, k, seed, 0, 0
        self._inner = MPerClassSampler(self.labels, m=k, batch_size=p * k, length_before_new_iter=length)
        self._classes = list(self._inner.labels)

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    def __len__(self) -> int:
        return len(self._inner) - self.start

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select ``epoch``'s order; skip its first ``start_batch`` batches (mid-epoch resume)."""
        self.epoch = epoch
        self.start = start_batch * self.batch_size

    def indices(self) -> list[int]:
        """The whole epoch's index list (before skipping)."""
        saved = c_f.NUMPY_RANDOM
        c_f.NUMPY_RANDOM = np.random.RandomState(epoch_seed(self.seed, self.epoch))
        try:
            self._inner.labels = list(self._classes)
            return [int(i) for i in self._inner]
        finally:
            c_f.NUMPY_RANDOM = saved

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :])

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "start": self.start}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.epoch, self.start = int(state["seed"]), int(state["epoch"]), int(state["start"])
