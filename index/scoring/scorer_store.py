"""Fitted OOD scorers on disk, so that loading an engine reads them instead of fitting them.

What the scorers fit from the catalog (the knn scorer's flat index of training vectors and
its few-shot shifts, the Mahalanobis means and shrunk precisions, the MSP temperature) is
stored once per set of prototypes it was fitted against, in
``indexes/<model-id>/scorers/<key>/``:

- ``stats.npz``: every scorer's :meth:`state` arrays (``<scorer>/<name>``), the scorer
  names, the prototypes digest and version they belong to;
- ``knn.faiss``: the knn scorer's flat inner-product index (``faiss.write_index``), read
  back memory-mapped, so no second flat index is built at load.

``key`` names the prototypes (:func:`index.catalog.decisions.prototypes_digest`) and what was fitted
(``known``: every scorer on the trained species; ``added-<scorer>``: the decision scorer with
the added species' support crops). A folder is written under a temporary name and renamed
into place: a reader sees a whole one or none; two writers race harmlessly (the loser's
copy is discarded). Older folders of the same kind beyond :data:`KEEP` are deleted.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import faiss
import numpy as np

from index.files import fsync_path
from index.scoring.ood import Scorer, make_scorer
from index.scoring.prototypes import Prototypes
from index.vectors.generations import model_dir

log = logging.getLogger(__name__)

STATS, KNN = "stats.npz", "knn.faiss"
KEEP = 4  # folders of one kind kept per model (the newest)


def scorer_folder(root: str | Path, model_id: str, kind: str, digest: str) -> Path:
    """``<root>/indexes/<model_id>/scorers/<kind>-<digest[:24]>``."""
    return model_dir(root, model_id) / "scorers" / f"{kind}-{digest[:24]}"


def save_scorers(folder: Path, scorers: Mapping[str, Scorer], digest: str, version: int) -> Path:
    """Write fitted ``scorers`` (name -> scorer) to ``folder`` (atomically, see the module doc)."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    arrays: dict[str, np.ndarray] = {
        "names": np.asarray(list(scorers), dtype=str),
        "digest": np.asarray(digest),
        "version": np.asarray(int(version)),
    }
    for name, scorer in scorers.items():
        for key, value in scorer.state().items():
            arrays[f"{name}/{key}"] = np.asarray(value)
        if name == "knn":
            faiss.write_index(scorer.index, str(tmp / KNN))
    with open(tmp / STATS, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_path(tmp)
    try:
        tmp.rename(folder)
    except OSError:  # another process stored the same scorers first
        shutil.rmtree(tmp, ignore_errors=True)
        return folder
    fsync_path(folder.parent)
    _prune(folder)
    log.info("stored fitted scorers %s in %s", ", ".join(scorers), folder)
    return folder


def load_scorers(folder: Path, prototypes: Prototypes, digest: str) -> dict[str, Scorer] | None:
    """The scorers stored in ``folder`` for prototypes with this ``digest``, else None (none
    stored, or stored for other prototypes). ``prototypes`` back the prototype-based scorers."""
    path = folder / STATS
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    if str(arrays["digest"]) != digest:
        return None
    scorers: dict[str, Scorer] = {}
    for name in (str(n) for n in arrays["names"]):
        prefix = f"{name}/"
        state = {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}
        scorer = make_scorer(name)
        if name == "knn":
            scorer.restore(state, prototypes, _read_flat(folder / KNN))
        else:
            scorer.restore(state, prototypes)
        scorers[name] = scorer
    return scorers


def _read_flat(path: Path) -> faiss.Index:
    """The stored flat index, memory-mapped where faiss can (a read, not a build)."""
    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:
        return faiss.read_index(str(path))


def _prune(folder: Path) -> None:
    """Delete all but the newest :data:`KEEP` folders of ``folder``'s kind (never ``folder``)."""
    kind = folder.name.rsplit("-", 1)[0]
    same = sorted(
        (
            p
            for p in folder.parent.iterdir()
            if p.is_dir() and p != folder and not p.name.startswith(".") and p.name.rsplit("-", 1)[0] == kind
        ),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in same[KEEP - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
