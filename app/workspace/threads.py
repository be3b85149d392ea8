"""How many cores one oceanid process computes on (torch intra-op, OpenMP faiss, BLAS).

Two processes that each start a thread per core on a small machine do not share it: their
OpenMP and BLAS pools spin-wait against each other and both slow down far more than 2x
(issue 16 measured a training run at 4 crops/s next to an `identify`, against 80 alone).
So each process takes ``--threads`` / ``$OCEANID_THREADS``, else a default by job
(:func:`threads_for`): batch jobs (train, embed, index build, evaluate, detect train, demo) run
alone as a rule and take every core; the server, the explorer and the short query commands take
half the cores they may run on (at least one), so a server and a CLI job beside it split the
machine. Measured: bench/startup.py (bench/RESULTS.md, "Start-up and threads").
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


#: commands (first words after ``oceanid``) that run alone as a rule: every core by default
BATCH_JOBS = frozenset(
    {
        ("demo",),
        ("train",),
        ("embed",),
        ("evaluate",),
        ("index", "build"),
        ("index", "rebuild"),
        ("detect", "train"),
        ("detect", "evaluate"),
    }
)


def threads_for(command: tuple[str, ...]) -> int:
    """The default compute threads of ``command`` (``("index", "build")``, ``("serve",)``...):
    every usable core for a :data:`BATCH_JOBS` one, else :func:`default_threads`."""
    batch = tuple(command[:1]) in BATCH_JOBS or tuple(command[:2]) in BATCH_JOBS
    return usable_cores() if batch else default_threads()


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
