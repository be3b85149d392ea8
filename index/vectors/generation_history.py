"""A model's older index generations: :func:`prune` deletes all but the newest (never the live one),
:func:`rollback` makes the generation before the live one live again, verified like any load.
The generations themselves (layout, publish, verify, load) are :mod:`index.vectors.generations`."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from index.errors import EmptyIndex, InvalidInput, NotFound
from index.vectors.generations import (
    DEFAULT_KEEP,
    GEN_RE,
    current_generation,
    list_generations,
    model_dir,
    set_current,
    verify,
)

log = logging.getLogger(__name__)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune(root: str | Path, model_id: str, keep: int = DEFAULT_KEEP) -> list[str]:
    """Delete all but the newest ``keep`` generations (never the live one) and dead temp entries.

    Returns:
        Names removed.
    """
    if keep < 1:
        raise InvalidInput("keep must be >= 1")
    folder = model_dir(root, model_id)
    live = current_generation(root, model_id)
    gens = list_generations(root, model_id)
    doomed = [n for n in gens[: max(0, len(gens) - keep)] if n != live]
    for name in doomed:
        shutil.rmtree(folder / name)
    if folder.is_dir():
        for entry in folder.glob(".tmp-*"):
            pid = entry.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _pid_alive(int(pid)):
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                doomed.append(entry.name)
    if doomed:
        log.info("pruned %s/%s", model_id, ", ".join(doomed))
    return doomed


def rollback(root: str | Path, model_id: str, model_config_hash: str | None = None, dim: int | None = None) -> str:
    """Make the generation before the live one live again, after verifying it.

    Returns:
        The name now in ``CURRENT``.

    Raises:
        EmptyIndex: no generation is live.
        NotFound: the live generation is the oldest one kept.
        IndexMismatch: the previous generation fails verification (CURRENT untouched).
    """
    live = current_generation(root, model_id)
    if live is None:
        raise EmptyIndex(f"no index generation for model {model_id}", hint="run `oceanid index build`")
    number = int(GEN_RE.match(live).group(1))
    older = [n for n in list_generations(root, model_id) if int(GEN_RE.match(n).group(1)) < number]
    if not older:
        raise NotFound(
            f"no generation before {live} for model {model_id}",
            hint="older generations are pruned; `oceanid index rebuild` writes a new one",
        )
    previous = older[-1]
    verify(model_dir(root, model_id) / previous, model_id, model_config_hash, dim)
    set_current(root, model_id, previous)
    return previous
