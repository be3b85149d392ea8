"""Immutable index generations and the atomic ``CURRENT`` pointer.

Layout under a home folder ``root``::

    <root>/indexes/<model-id>/gen-NNNN/index.faiss
    <root>/indexes/<model-id>/gen-NNNN/manifest.json
    <root>/indexes/<model-id>/CURRENT          # e.g. "gen-0003\\n"

A sharded generation (index/vectors/shards.py) holds one sub-folder per shard instead of
``index.faiss``, each with its own index file and manifest::

    <root>/indexes/<model-id>/gen-NNNN/shard-000/index.faiss + manifest.json
    <root>/indexes/<model-id>/gen-NNNN/manifest.json   # shards: N, sha256 over the shards' sha256s

:func:`publish` writes a new generation into a temporary folder, fsyncs the
files and the folder, renames it into place, verifies it (reload, count,
sha256) and only then swaps ``CURRENT`` (temp file, fsync, ``os.replace``).
A crash at any point leaves the previous generation live; leftovers are
``.tmp-*`` entries that :func:`~index.vectors.generation_history.prune` removes. The workspace prunes after each
publish, keeping the newest :data:`DEFAULT_KEEP`; ``generation_history.rollback`` makes the
generation before the live one live again, verified like any load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from index.errors import EmptyIndex, IndexMismatch, InvalidInput, NotFound
from index.files import file_sha256, fsync_path, write_durable
from index.vectors import vector_index as vectors
from index.vectors.shards import ShardedIndex

log = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"
SHARD_DIR = "shard-{:03d}"
CURRENT_FILE = "CURRENT"
METRIC = "inner_product"
DEFAULT_KEEP = 3  # generations kept by prune (the live one is always kept)
GEN_RE = re.compile(r"^gen-(\d{4,})$")  # a generation folder: gen-NNNN
_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
StageHook = Callable[[str], None]


@dataclass(frozen=True)
class Manifest:
    """What a generation holds; written next to ``index.faiss``."""

    model_id: str
    config_hash: str  # hash of the encoder config the vectors came from
    dim: int
    kind: str  # 'flat' | 'ivf' | 'ivfpq' | 'hnsw'
    count: int  # vectors in the index
    sha256: str  # of index.faiss (sharded: of the shards' sha256s, see shards_sha256)
    created: str  # ISO-8601 UTC
    metric: str = METRIC
    format_version: int = 1
    content: str = ""  # index.catalog.embeddings.content_digest of the ids + vectors ("" = not recorded)
    shards: int = 0  # 0: one index.faiss; N >= 2: N shard-NNN/ folders (sha256 then digests their sha256s)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        return cls(**dict(data))


def shards_sha256(shard_sha256s: list[str]) -> str:
    """The sha256 a sharded manifest records: of its shards' sha256s, one a line, in shard order."""
    return hashlib.sha256("".join(f"{h}\n" for h in shard_sha256s).encode("ascii")).hexdigest()


def _write_index(
    folder: Path,
    index: vectors.VectorIndex,
    model_id: str,
    config_hash: str,
    created: str,
    content: str = "",
    on_written: Callable[[], None] | None = None,
) -> Manifest:
    """Write ``index.faiss`` and its manifest into ``folder`` (fsynced); returns the manifest.
    ``on_written`` runs between the two (the crash tests' stage hook)."""
    folder.mkdir(exist_ok=True)
    index_path = folder / INDEX_FILE
    index.save(index_path)
    fsync_path(index_path)
    if on_written is not None:
        on_written()
    manifest = Manifest(
        model_id=model_id,
        config_hash=config_hash,
        dim=index.dim,
        kind=index.kind,
        count=index.ntotal,
        sha256=file_sha256(index_path),
        created=created,
        content=content,
    )
    write_durable(folder / MANIFEST_FILE, json.dumps(manifest.to_dict(), indent=2).encode("utf-8"))
    fsync_path(folder)
    return manifest


def model_dir(root: str | Path, model_id: str) -> Path:
    """``<root>/indexes/<model_id>``; raises InvalidInput for unsafe model ids."""
    if not _MODEL_ID_RE.match(model_id or ""):
        raise InvalidInput(f"invalid model id {model_id!r} (letters, digits, '.', '_', '-')")
    return Path(root) / "indexes" / model_id


def list_generations(root: str | Path, model_id: str) -> list[str]:
    """Names of the completed generations (``gen-NNNN``), oldest first."""
    folder = model_dir(root, model_id)
    if not folder.is_dir():
        return []
    names = [p.name for p in folder.iterdir() if p.is_dir() and GEN_RE.match(p.name)]
    return sorted(names, key=lambda n: int(GEN_RE.match(n).group(1)))


def current_generation(root: str | Path, model_id: str) -> str | None:
    """Name in ``CURRENT``, or None when no generation was ever published.

    Raises:
        IndexMismatch: CURRENT exists but does not hold a generation name.
    """
    pointer = model_dir(root, model_id) / CURRENT_FILE
    if not pointer.exists():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    if not GEN_RE.match(name):
        raise IndexMismatch(f"{pointer} does not name a generation (holds {name[:40]!r})")
    return name


def _stage(hook: StageHook | None, name: str) -> None:
    log.debug("generation stage: %s", name)
    if hook is not None:
        hook(name)


def set_current(root: str | Path, model_id: str, name: str, on_stage: StageHook | None = None) -> None:
    """Atomically point ``CURRENT`` at generation ``name`` (which must exist)."""
    folder = model_dir(root, model_id)
    if not GEN_RE.match(name) or not (folder / name).is_dir():
        raise NotFound(f"generation {name!r} does not exist under {folder}")
    tmp = folder / f".tmp-CURRENT-{os.getpid()}"
    write_durable(tmp, f"{name}\n".encode())
    _stage(on_stage, "current_tmp_written")
    os.replace(tmp, folder / CURRENT_FILE)
    fsync_path(folder)
    _stage(on_stage, "current_swapped")
    log.info("CURRENT for %s -> %s", model_id, name)


def publish(
    root: str | Path,
    model_id: str,
    index: vectors.VectorIndex | ShardedIndex,
    model_config_hash: str,
    on_stage: StageHook | None = None,
    content: str = "",
) -> tuple[str, Manifest]:
    """Write ``index`` as a new generation, verify it, and make it live.

    ``content`` (a digest of the ids and vectors indexed) goes into the manifest,
    so a later build can tell whether the live generation is up to date.

    ``on_stage`` is called with each stage name ('tmp_created', 'index_written',
    'manifest_written', 'renamed', 'verified', 'current_tmp_written',
    'current_swapped'; a sharded index adds 'shard_written_<s>' after each shard);
    tests use it to crash the process at each point.

    Returns:
        (generation name, its manifest).

    Raises:
        IndexMismatch: the written generation fails verification (CURRENT untouched).
    """
    folder = model_dir(root, model_id)
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        fsync_path(folder.parent)
    existing = [int(GEN_RE.match(n).group(1)) for n in list_generations(root, model_id)]
    number = max(existing, default=0) + 1
    tmp = folder / f".tmp-gen-{number:04d}-{os.getpid()}"
    tmp.mkdir()
    _stage(on_stage, "tmp_created")
    created = datetime.now(UTC).isoformat(timespec="seconds")
    if isinstance(index, ShardedIndex):
        parts = []
        for s, shard in enumerate(index.shards):
            parts.append(_write_index(tmp / SHARD_DIR.format(s), shard, model_id, model_config_hash, created))
            _stage(on_stage, f"shard_written_{s}")
        _stage(on_stage, "index_written")
        manifest = Manifest(
            model_id=model_id,
            config_hash=model_config_hash,
            dim=index.dim,
            kind=index.kind,
            count=index.ntotal,
            sha256=shards_sha256([p.sha256 for p in parts]),
            created=created,
            content=content,
            shards=index.n_shards,
        )
        write_durable(tmp / MANIFEST_FILE, json.dumps(manifest.to_dict(), indent=2).encode("utf-8"))
        fsync_path(tmp)
    else:
        manifest = _write_index(
            tmp, index, model_id, model_config_hash, created, content, lambda: _stage(on_stage, "index_written")
        )
    _stage(on_stage, "manifest_written")
    while True:  # another publisher may have taken this number meanwhile
        name = f"gen-{number:04d}"
        try:
            os.rename(tmp, folder / name)
            break
        except OSError:
            if not (folder / name).exists():
                raise
            number += 1
    fsync_path(folder)
    _stage(on_stage, "renamed")
    verify(folder / name, model_id=model_id, model_config_hash=model_config_hash)
    _stage(on_stage, "verified")
    set_current(root, model_id, name, on_stage=on_stage)
    log.info("published %s/%s: %d vectors, %s", model_id, name, manifest.count, manifest.kind)
    return name, manifest


def read_manifest(gen_dir: str | Path) -> Manifest:
    """Parse ``gen_dir/manifest.json``; raises IndexMismatch when missing or malformed."""
    path = Path(gen_dir) / MANIFEST_FILE
    if not path.is_file():
        raise IndexMismatch(f"missing {path}")
    try:
        return Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise IndexMismatch(f"malformed manifest {path}: {exc}") from exc


def _check_expected(
    manifest: Manifest, gen_dir: Path, model_id: str | None, model_config_hash: str | None, dim: int | None
) -> None:
    if model_id is not None and manifest.model_id != model_id:
        raise IndexMismatch(f"index {gen_dir} was built by model {manifest.model_id}, you are using {model_id}")
    if model_config_hash is not None and manifest.config_hash != model_config_hash:
        raise IndexMismatch(
            f"index {gen_dir} was built by model {manifest.model_id} with config "
            f"{manifest.config_hash[:12]}, you are using config {model_config_hash[:12]}"
        )
    if dim is not None and manifest.dim != dim:
        raise IndexMismatch(f"index {gen_dir} has dim {manifest.dim}, your vectors have dim {dim}")
    if manifest.metric != METRIC:
        raise IndexMismatch(f"index {gen_dir} uses metric {manifest.metric!r}, expected {METRIC!r}")


def verify(
    gen_dir: str | Path,
    model_id: str | None = None,
    model_config_hash: str | None = None,
    dim: int | None = None,
) -> Manifest:
    """Check a generation: files present, sha256, reloadable, count/dim/kind as recorded.

    The optional ``model_id``/``model_config_hash``/``dim`` must also match.

    Raises:
        IndexMismatch: anything missing, altered, truncated or built by another model.
    """
    _, manifest = _open(Path(gen_dir), model_id, model_config_hash, dim, device="cpu")
    return manifest


def _open_shards(
    gen_dir: Path, manifest: Manifest, model_id: str | None, model_config_hash: str | None, dim: int | None, device: str
) -> ShardedIndex:
    """Each ``shard-NNN/`` opened and checked like a one-index generation, then the sharded
    manifest's own sha256 (over the shards') and the shard count checked."""
    found = sorted(p.name for p in gen_dir.glob("shard-*") if p.is_dir())
    expected = [SHARD_DIR.format(s) for s in range(manifest.shards)]
    if found != expected:
        raise IndexMismatch(f"{gen_dir} holds shard folders {found[:4]}..., its manifest says {manifest.shards}")
    opened = [_open(gen_dir / name, model_id, model_config_hash, dim, device) for name in expected]
    if shards_sha256([m.sha256 for _, m in opened]) != manifest.sha256:
        raise IndexMismatch(f"the shards of {gen_dir} do not match its manifest sha256 (altered)")
    try:
        return ShardedIndex([index for index, _ in opened])
    except InvalidInput as exc:
        raise IndexMismatch(f"cannot load {gen_dir}: {exc}") from exc


def _open(
    gen_dir: Path, model_id: str | None, model_config_hash: str | None, dim: int | None, device: str
) -> tuple[vectors.VectorIndex | ShardedIndex, Manifest]:
    if not gen_dir.is_dir():
        raise IndexMismatch(f"generation folder {gen_dir} is missing")
    manifest = read_manifest(gen_dir)
    _check_expected(manifest, gen_dir, model_id, model_config_hash, dim)
    what = gen_dir
    if manifest.shards:
        index = _open_shards(gen_dir, manifest, model_id, model_config_hash, dim, device)
    else:
        index_path = gen_dir / INDEX_FILE
        if not index_path.is_file():
            raise IndexMismatch(f"missing {index_path}")
        if file_sha256(index_path) != manifest.sha256:
            raise IndexMismatch(f"{index_path} does not match its manifest sha256 (truncated or altered)")
        try:
            index = vectors.load(index_path, device=device)
        except (InvalidInput, NotFound) as exc:
            raise IndexMismatch(f"cannot load {index_path}: {exc}") from exc
        what = index_path
    if (index.ntotal, index.dim, index.kind) != (manifest.count, manifest.dim, manifest.kind):
        raise IndexMismatch(
            f"{what} holds {index.ntotal} x {index.dim} {index.kind}, manifest says "
            f"{manifest.count} x {manifest.dim} {manifest.kind}"
        )
    return index, manifest


def load_current(
    root: str | Path,
    model_id: str,
    model_config_hash: str,
    dim: int | None = None,
    device: str = "cpu",
) -> tuple[vectors.VectorIndex | ShardedIndex, Manifest]:
    """Load the live generation for ``model_id`` after checking it was built by that model.

    Raises:
        EmptyIndex: no generation was ever published for this model.
        IndexMismatch: wrong model/config/dim, missing files, sha256 mismatch.
    """
    name = current_generation(root, model_id)
    if name is None:
        raise EmptyIndex(f"no index generation for model {model_id} under {model_dir(root, model_id)}")
    return _open(model_dir(root, model_id) / name, model_id, model_config_hash, dim, device)


def current_manifest(
    root: str | Path, model_id: str, model_config_hash: str, dim: int | None = None
) -> tuple[str, Manifest]:
    """(live generation name, its manifest), checked against the model like a load, without
    reading or hashing the index file (a process that only identifies never needs it).

    Raises:
        EmptyIndex: no generation was ever published for this model.
        IndexMismatch: wrong model/config/dim, or the manifest is missing or malformed.
    """
    name = current_generation(root, model_id)
    if name is None:
        raise EmptyIndex(f"no index generation for model {model_id} under {model_dir(root, model_id)}")
    gen_dir = model_dir(root, model_id) / name
    manifest = read_manifest(gen_dir)
    _check_expected(manifest, gen_dir, model_id, model_config_hash, dim)
    return name, manifest


def load_generation(
    root: str | Path, model_id: str, name: str, model_config_hash: str, dim: int | None = None, device: str = "cpu"
) -> vectors.VectorIndex | ShardedIndex:
    """Load one named generation after the full check (manifest, sha256, counts). Raises IndexMismatch."""
    return _open(model_dir(root, model_id) / name, model_id, model_config_hash, dim, device)[0]
