"""What the benchmark scripts share: where the data sets are, how they are loaded and split, how a bench
home is set up, how a figure is timed and where a result is written.

Run every script as a module from the repository root: ``python -m bench.<name> --help``. Heavy
libraries (torch, scikit-learn, the embedder) are imported inside the functions that need them, so
``--help`` starts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FISH4K = DATA / "fish4knowledge"
PLANKTON = DATA / "pwssc_plankton"
AQUARIUM = DATA / "aquarium"
RESULTS = REPO / "bench" / "results"  # untracked: one JSON per run of a script
FIGURES = REPO / "bench" / "figures"  # tracked: the figures bench/RESULTS.md quotes, one key per run
TRACK = re.compile(r"fish_(\d+)_")  # fish4knowledge file names carry their track id
#: ``oceanid`` in a fresh process of this interpreter (this checkout's code with :func:`cli_env`)
CLI = [sys.executable, "-c", "from app.cli import main; main()"]


def bench_parser(file: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of the bench script at ``file`` (its ``__file__``): the usage line reads
    ``python -m bench.<name>``, the description is the script's docstring as written."""
    return argparse.ArgumentParser(
        prog=f"python -m bench.{Path(file).stem}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


# ---- results ----------------------------------------------------------------------------------------


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def command(name: str) -> str:
    """The command line that ran bench script ``name``, as a reader would type it again."""
    return shlex.join(["python", "-m", f"bench.{name}", *sys.argv[1:]])


def write_result(name: str, data: dict) -> Path:
    """``bench/results/<name>.json``: ``data`` with the bench name, the time and the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    path.write_text(json.dumps({"bench": name, "when": when, "machine": machine(), **data}, indent=2, default=str))
    return path


def load_figures(path: Path) -> dict:
    """The runs stored in a figures JSON file (``{}`` when there is none yet)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def store_figures(path: Path, key: str, value: Any, indent: int = 2, sort_keys: bool = False) -> None:
    """Store ``value`` under ``key`` in ``path``, keeping the other runs. The file is read just before it
    is written: two runs of a script may overlap. ``indent`` / ``sort_keys``: the file's own layout."""
    stored = load_figures(path)
    stored[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=indent, sort_keys=sort_keys) + "\n")


def table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    width = {c: max(len(str(c)), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    lines = ["  ".join(str(c).ljust(width[c]) for c in cols)]
    lines.append("  ".join("-" * width[c] for c in cols))
    lines += ["  ".join(_fmt(r.get(c)).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


# ---- timing -----------------------------------------------------------------------------------------


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """(fewest wall seconds of ``repeats`` calls of ``fn``, what the last call returned): on shared
    cores the best run is the one least disturbed."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# ---- data sets --------------------------------------------------------------------------------------


def _by_size(root: Path) -> list[Path]:
    """Class folders of ``root``, most crops first (ties by name)."""
    return sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: (-len(list(d.glob("*.png"))), d.name))


def fish4knowledge(root: Path = FISH4K, species: int = 15) -> tuple[list[Path], list[str], list[str]]:
    """(paths, labels, track groups) of the ``species`` most frequent folders; a group is the track id."""
    folders = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: -len(list(d.glob("*.png"))))
    paths, labels, groups = [], [], []
    for folder in folders[:species]:
        for path in sorted(folder.glob("*.png")):
            paths.append(path)
            labels.append(folder.name)
            groups.append(TRACK.match(path.name).group(1))
    return paths, labels, groups


def fish4knowledge_all(root: Path = FISH4K, known: int = 15) -> tuple[list[Path], list[str], list[str], set[str]]:
    """(paths, labels, track groups, known species): every species, the ``known`` most frequent marked
    known; a group is ``<species folder>:<track id>``."""
    folders = _by_size(root)
    paths, labels, groups = [], [], []
    for folder in folders:
        for path in sorted(folder.glob("*.png")):
            paths.append(path)
            labels.append(folder.name)
            groups.append(folder.name + ":" + TRACK.match(path.name).group(1))
    return paths, labels, groups, {d.name for d in folders[:known]}


def plankton_all(root: Path = PLANKTON, min_known: int = 50) -> tuple[list[Path], list[str], list[str], set[str]]:
    """(paths, labels, groups, frequent classes): a group is the sha1 of the file's bytes, which keeps
    byte-identical duplicates together; a class with ``min_known`` crops or more is frequent."""
    import hashlib

    paths, labels, groups = [], [], []
    for folder in sorted(d for d in root.iterdir() if d.is_dir()):
        for path in sorted(folder.glob("*.png")):
            paths.append(path)
            labels.append(folder.name)
            groups.append(hashlib.sha1(path.read_bytes()).hexdigest())
    names, counts = np.unique(labels, return_counts=True)
    return paths, labels, groups, {n for n, c in zip(names, counts, strict=True) if c >= min_known}


def synthetic_reef(work: Path) -> tuple[list[Path], list[str], list[str], set[str]]:
    """(paths, labels, frame groups, known species) of every crop of a fresh synthetic reef (16 species,
    4 held out, 400 frames), boxes cut with PIL into ``work/crops``."""
    from PIL import Image

    from index.sources.synthetic import generate_reef

    coco = json.loads(generate_reef(work / "reef", species=16, holdout=4, frames=400, seed=0).read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    known = {c["name"] for c in coco["categories"] if not c.get("holdout")}
    files = {im["id"]: work / "reef" / im["file_name"] for im in coco["images"]}
    (work / "crops").mkdir(exist_ok=True)
    paths, labels, groups = [], [], []
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        if w < 4 or h < 4:
            continue
        with Image.open(files[ann["image_id"]]) as frame:
            crop = frame.convert("RGB").crop((int(x), int(y), int(x + w), int(y + h)))
        path = work / "crops" / f"{ann['id']:06d}.png"
        crop.save(path)
        paths.append(path)
        labels.append(names[ann["category_id"]])
        groups.append(str(ann["image_id"]))
    return paths, labels, groups, known


def split(labels: list[str], groups: list[str], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, val, test) by group (StratifiedGroupKFold): test one fold of 5, val one fold
    of 5 of the rest; no group crosses two of them."""
    from sklearn.model_selection import StratifiedGroupKFold

    y, g = np.array(labels), np.array(groups)
    outer = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
    rest, test = next(outer.split(np.zeros(len(y)), y, g))
    inner = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
    tr, va = next(inner.split(np.zeros(len(rest)), y[rest], g[rest]))
    return rest[tr], rest[va], test


def known_unknown_splits(labels: list[str], groups: list[str], known: set[str]) -> dict[str, np.ndarray]:
    """Index arrays train / val / test (known species, :func:`split`) and unknown_val / unknown_test (the
    held-out species, their groups halved), no group crossing."""
    import itertools

    from sklearn.model_selection import GroupShuffleSplit

    y = np.array(labels)
    kn = np.flatnonzero(np.isin(y, sorted(known)))
    un = np.flatnonzero(~np.isin(y, sorted(known)))
    tr, va, te = split([labels[i] for i in kn], [groups[i] for i in kn])
    a, b = next(GroupShuffleSplit(n_splits=1, test_size=0.5, random_state=0).split(un, groups=np.array(groups)[un]))
    out = {"train": kn[tr], "val": kn[va], "test": kn[te], "unknown_val": un[a], "unknown_test": un[b]}
    g = np.array(groups)
    # no group (track / frame) crosses the known splits, nor the two unknown halves; on the synthetic
    # reef a frame holds known and held-out species alike, so unknown crops may share frames with training
    for part in (("train", "val", "test"), ("unknown_val", "unknown_test")):
        for x, z in itertools.combinations(part, 2):
            assert not set(g[out[x]]) & set(g[out[z]]), f"a group crosses {x}/{z}"
    return out


def clustered_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 unit vectors around 1,000 Gaussian centres (sigma 0.3)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1000, dim)).astype(np.float32)
    x = centres[rng.integers(0, 1000, n)] + 0.3 * rng.normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


# ---- models -----------------------------------------------------------------------------------------


def train_on(config, paths: Sequence[Path], labels: Sequence[str], train_idx, val_idx, out: Path):
    """``embedder.training.train`` on the crops at ``train_idx`` (validated on ``val_idx``) into ``out``;
    returns (its TrainResult, wall seconds)."""
    from embedder.training import train

    def items(ix):
        return [(paths[i], labels[i]) for i in ix]

    t0 = time.perf_counter()
    result = train(config, items(train_idx), items(val_idx), out, progress=False)
    return result, time.perf_counter() - t0


def embed_all(model, paths: Sequence[Path], workers: int = 0) -> np.ndarray:
    """(n, d) float32 vectors of every crop in ``paths`` on the CPU; raises if any crop is unreadable."""
    from embedder.encoding import encode_paths

    enc = encode_paths(model, list(paths), batch_size=128, workers=workers, device="cpu", progress=False)
    if enc.failed:
        raise RuntimeError(f"unreadable crops: {enc.failed[:3]}")
    return enc.vectors


# ---- homes ------------------------------------------------------------------------------------------


def vector_catalog(home: Path, n: int, dim: int):
    """A fresh catalog in ``home`` with ``n`` annotations (ids 1..n, 100 concepts, all train) of one
    image and a registered model ``bench`` of ``dim`` dimensions, ready for ``n`` stored vectors."""
    from index.catalog.catalog import Catalog
    from index.catalog.embeddings import register_model

    catalog = Catalog(home / "catalog.duckdb")
    catalog.ensure_schema()
    with catalog.write() as con:
        con.execute(
            "INSERT INTO images (source, source_id, sha256, path, width, height) VALUES ('bench', '1', 'x', 'x', 1, 1)"
        )
        con.execute(
            f"INSERT INTO annotations (image_id, concept, x, y, w, h, group_key, split) "
            f"SELECT 1, 'c' || (i % 100), 0, 0, 1, 1, 'g', 'train' FROM range({n}) t(i)"
        )
    register_model(catalog, "bench", "h" * 64, dim, "bench")
    return catalog


def tiny_workspace(home: Path, frames: int = 48, epochs: int = 2):
    """A small trained home built with the real Workspace steps: the synthetic reef (8 species, 2 held
    out), split, the registered 32-d ``tiny`` encoder trained ``epochs`` epochs, embedded, indexed and
    evaluated (the same recipe as the tests' shared workspace, without depending on tests/)."""
    from app.workspace import SplitConfig, TrainConfig, Workspace

    ws = Workspace(home)
    ws.ingest_synthetic(species=8, holdout=2, frames=frames, seed=1)
    ws.split(SplitConfig(seed=0))
    ws.train(
        TrainConfig(
            backbone="tiny",
            weights="none",
            epochs=epochs,
            image_size=32,
            dim=32,
            batch_p=4,
            batch_k=4,
            workers=0,
            seed=0,
            device="cpu",
        ),
        model="tiny",
    )
    ws.embed("tiny", device="cpu", progress=False)
    ws.index_build("tiny")
    ws.evaluate()
    return ws


def cli_env(*drop: str) -> dict[str, str]:
    """The environment for an ``oceanid`` subprocess (:data:`CLI`): this checkout first on the path,
    the variables named in ``drop`` removed."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # a user's install has its bytecode cached (pip compiles at install; an editable install on the first
    # run): a shell with PYTHONDONTWRITEBYTECODE=1 would time compiling this checkout on every start
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in drop:
        env.pop(name, None)
    return env
