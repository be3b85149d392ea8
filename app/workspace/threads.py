"""How many cores one oceanid process computes on (torch intra-op, OpenMP faiss, BLAS).

Two processes that each start a thread per core on a small machine do not share it: their
OpenMP and BLAS pools spin-wait against each other and both slow down far more than 2x
(issue 16 measured a training run at 4 crops/s next to an `identify`, against 80 alone).
So each process takes ``--threads`` / ``$OCEANID_THREADS``, by default half the cores it may
run on (at least one): the server and a CLI job beside it then split the machine. Measured:
bench/startup.py (bench/RESULTS.md, "Start-up and threads").
"""

from __future__ import annotations

import logging
import os
import sys

from index.errors import InvalidInput

log = logging.getLogger(__name__)

THREADS_ENV = "OCEANID_THREADS"
#: read by OpenMP, OpenBLAS and MKL when they load (and inherited by the processes started from here)
POOL_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """Half the usable cores, at least one."""
    return max(1, usable_cores() // 2)


def limit_threads(threads: int | None = None) -> int:
    """Cap this process's compute threads at ``threads``, else ``$OCEANID_THREADS``, else
    :func:`default_threads`. Returns the number set. Raises InvalidInput for a bad value.

    Libraries not loaded yet read the pool variables when they load; those loaded already
    (numpy's BLAS, torch) are limited in place (threadpoolctl, ``torch.set_num_threads``)."""
    if threads is None:
        text = os.environ.get(THREADS_ENV, "").strip()
        if text and not text.isdigit():
            raise InvalidInput(f"${THREADS_ENV} must be a whole number of threads, got {text!r}")
        threads = int(text) if text else default_threads()
    if isinstance(threads, bool) or threads < 1:
        raise InvalidInput(f"threads must be at least 1, got {threads}")
    os.environ.update({var: str(threads) for var in POOL_VARS})
    os.environ[THREADS_ENV] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    if "torch" in sys.modules:
        from embedder.device import set_threads

        set_threads(threads)
    if "faiss" in sys.modules:
        from index.vectors.faiss_calls import set_threads as faiss_threads

        faiss_threads(threads)
    log.info("compute threads: %d (of %d cores)", threads, usable_cores())
    return threads
