"""Embedding on a Ray cluster (Ray Data): crops in as an Arrow table, vectors out as Parquet shards.

The runner knows no SQL and no catalog: it is handed ``(annotation_id, path)`` rows
and a model folder, and leaves one Parquet file per shard of rows in ``out_dir``:

1. the rows are cut into shards of ``shard_rows`` (by position, ids ascending); a shard
   is named by a digest of the model config and its ids, so a rerun over the same rows
   finds the shards already written and computes only the rest (resume);
2. Ray Data decodes the pending rows in parallel tasks (the model's own eval geometry,
   uint8), and ``map_batches`` embeds them on an actor pool (``workers`` actors, each
   loading the model once, on a GPU when it is given ``gpus_per_worker`` > 0);
3. the driver streams the results back in order and writes each shard when its last
   row arrives (temp file + rename, so a killed run leaves only whole shards).

The driver writes the files rather than ``Dataset.write_parquet`` because resume needs
one file per known set of ids, and Ray's writer names files per block.
Without ``address`` a local cluster is started and stopped; a cluster this process
already joined (``ray.init`` before the call) is used and left running.

The model folder and the crop paths must be readable by every worker (on a multi-node
cluster: a shared filesystem).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from index.errors import InvalidInput

log = logging.getLogger(__name__)

SHARD_SCHEMA = pa.schema([("annotation_id", pa.int64()), ("vector", pa.list_(pa.float32())), ("error", pa.string())])


@dataclass(frozen=True)
class RayConfig:
    """Where and how wide a Ray embedding run goes."""

    address: str | None = None  # an existing cluster ("auto", "ray://host:10001"); None = start a local one
    workers: int = 2  # embedding actors (each loads the model once)
    gpus_per_worker: float = 0.0  # GPUs per actor; > 0 puts the model on that GPU
    batch_size: int = 64  # crops per forward pass
    shard_rows: int = 4096  # crops per Parquet shard (the unit of resume)
    local_cpus: int | None = None  # CPUs of a local cluster (None: all cores)
    object_store_mb: int = 512  # object store of a local cluster

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RayEmbedResult:
    """What one run left in ``out_dir``."""

    shards: tuple[Path, ...]  # every shard of the rows handed in, written now or before
    computed: int  # rows embedded (or failed) by this run
    reused: int  # rows whose shard was already written (resumed)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "shards": [str(p) for p in self.shards],
            "computed": self.computed,
            "reused": self.reused,
            "seconds": round(self.seconds, 3),
        }


def shard_name(config_hash: str, ids: np.ndarray) -> str:
    """File name of the shard holding ``ids`` (n,) int64 embedded by the model with ``config_hash``."""
    digest = hashlib.sha256(config_hash.encode() + np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    return f"shard-{int(ids[0]):012d}-{digest.hexdigest()[:16]}.parquet"


def plan_shards(ids: np.ndarray, config_hash: str, shard_rows: int) -> list[tuple[str, slice]]:
    """(file name, row slice) of each shard of ``ids`` (n,) int64, in order."""
    if shard_rows < 1:
        raise InvalidInput(f"shard_rows must be >= 1, got {shard_rows}")
    return [
        (shard_name(config_hash, ids[i : i + shard_rows]), slice(i, min(i + shard_rows, len(ids))))
        for i in range(0, len(ids), shard_rows)
    ]


class _Decode:
    """Ray Data batch fn: paths -> uint8 pixels (n, 3, S, S) and an error per row ('' = ok)."""

    def __init__(self, image_size: int) -> None:
        from embedder.transforms import _CentreSquare

        self.geometry = _CentreSquare(image_size)
        self.size = image_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from embedder.encoding import decode_crop

        n = len(batch["annotation_id"])
        pixels = np.zeros((n, 3, self.size, self.size), np.uint8)
        errors = np.full(n, "", dtype=object)
        for i, path in enumerate(batch["path"]):
            tensor, reason = decode_crop(path, self.geometry)
            if tensor is None:
                errors[i] = reason or "unreadable"
            else:
                pixels[i] = tensor.numpy()
        return {"annotation_id": batch["annotation_id"], "pixels": pixels, "error": errors}


class _Encoder:
    """Ray Data actor: loads the model once, embeds decoded batches."""

    def __init__(self, model_dir: str, use_gpu: bool) -> None:
        import torch

        from embedder.device import resolve_device
        from embedder.model import load_model

        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        self.device = resolve_device("cuda" if use_gpu else "cpu")
        self.model = load_model(model_dir).to(self.device).eval()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from embedder.encoding import forward_batch

        ok = np.asarray([e == "" for e in batch["error"]], dtype=bool)
        vectors = np.zeros((len(ok), self.model.config.vector_dim), np.float32)
        if ok.any():
            pixels = torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok]))
            vectors[ok] = forward_batch(self.model, pixels, self.device)
        return {"annotation_id": batch["annotation_id"], "vector": vectors, "error": batch["error"]}


def _write_shard(path: Path, ids: np.ndarray, vectors: np.ndarray, errors: list[str]) -> None:
    ok = np.asarray([e == "" for e in errors], dtype=bool)
    d = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    offsets = pa.array(np.arange(0, len(ids) * d + 1, d, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, flat, mask=pa.array(~ok))
    table = pa.table(
        {
            "annotation_id": pa.array(ids, pa.int64()),
            "vector": lists,
            "error": pa.array([None if good else e for good, e in zip(ok, errors, strict=False)], pa.string()),
        },
        schema=SHARD_SCHEMA,
    )
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _ray_init(config: RayConfig) -> bool:
    """Join or start a cluster; True when this call started it (and must stop it)."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(
        include_dashboard=False, logging_level="WARNING", log_to_driver=False, configure_logging=False
    )
    if config.address:
        ray.init(address=config.address, **kwargs)
        return True  # a connection this call made: disconnect at the end (the cluster stays up)
    ray.init(num_cpus=config.local_cpus, object_store_memory=config.object_store_mb * 1024 * 1024, **kwargs)
    return True


def embed_on_ray(
    crops: pa.Table,
    model_dir: Path,
    out_dir: Path,
    config: RayConfig,
    config_hash: str,
    on_shard: Callable[[Path], None] | None = None,
) -> RayEmbedResult:
    """Embed ``crops`` (Arrow: ``annotation_id int64``, ``path string`` absolute, ids ascending and
    distinct) with the model in ``model_dir``; one Parquet shard per ``config.shard_rows`` rows in
    ``out_dir`` (schema :data:`SHARD_SCHEMA`; failed crops have a null vector and an error).

    ``on_shard`` is called after each shard is written (tests interrupt a run with it).

    Raises:
        InvalidInput: bad config or table.
        ImportError: Ray is not installed (``pip install 'oceanid[scale]'``).
    """
    from embedder.model import read_config

    started = time.perf_counter()
    if config.workers < 1 or config.batch_size < 1 or config.gpus_per_worker < 0:
        raise InvalidInput("workers and batch_size must be >= 1 and gpus_per_worker >= 0")
    if set(crops.column_names) < {"annotation_id", "path"}:
        raise InvalidInput("crops must have columns annotation_id and path")
    ids = crops.column("annotation_id").to_numpy().astype(np.int64)
    if len(ids) > 1 and not (np.diff(ids) > 0).all():
        raise InvalidInput("crop ids must be distinct and ascending")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_shards(ids, config_hash, config.shard_rows)
    pending = [(name, rows) for name, rows in plan if not (out_dir / name).is_file()]
    reused = len(ids) - sum(r.stop - r.start for _, r in pending)
    if pending:
        _run(crops, model_dir, out_dir, config, pending, read_config(model_dir).image_size, on_shard)
    computed = len(ids) - reused
    log.info("ray embed: %d crops computed, %d reused from %d shards", computed, reused, len(plan))
    return RayEmbedResult(tuple(out_dir / name for name, _ in plan), computed, reused, time.perf_counter() - started)


def _run(
    crops: pa.Table,
    model_dir: Path,
    out_dir: Path,
    config: RayConfig,
    pending: list[tuple[str, slice]],
    image_size: int,
    on_shard: Callable[[Path], None] | None,
) -> None:
    import ray
    import ray.data

    rows = np.concatenate([np.arange(r.start, r.stop) for _, r in pending])
    ids_of = crops.column("annotation_id").to_numpy().astype(np.int64)
    todo = crops.select(["annotation_id", "path"]).take(pa.array(rows))
    started_here = _ray_init(config)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # shards complete one after another
        context.enable_progress_bars = False
        step = config.batch_size * 2  # blocks of two batches: decode and encode overlap across blocks
        ds = ray.data.from_arrow([todo.slice(i, step) for i in range(0, todo.num_rows, step)])
        ds = ds.map_batches(
            _Decode,
            fn_constructor_args=(image_size,),
            batch_size=config.batch_size,
            batch_format="numpy",
            concurrency=(1, max(1, config.workers)),
        )
        ds = ds.map_batches(
            _Encoder,
            fn_constructor_args=(str(model_dir), config.gpus_per_worker > 0),
            batch_size=config.batch_size,
            batch_format="numpy",
            concurrency=config.workers,
            num_gpus=config.gpus_per_worker or None,
        )
        expected = [ids_of[r] for _, r in pending]
        _collect(ds, out_dir, pending, expected, on_shard)
    finally:
        if started_here:
            ray.shutdown()


def _collect(
    ds: Any,
    out_dir: Path,
    pending: list[tuple[str, slice]],
    expected: list[np.ndarray],
    on_shard: Callable[[Path], None] | None,
) -> None:
    """Stream the embedded rows (in input order) into their shards, writing each when full."""
    shard = 0
    ids: list[np.ndarray] = []
    vecs: list[np.ndarray] = []
    errs: list[str] = []
    need = pending[0][1].stop - pending[0][1].start
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None, prefetch_batches=2):
        at = 0
        n = len(batch["annotation_id"])
        while at < n:
            take = min(need - sum(len(i) for i in ids), n - at)
            ids.append(np.asarray(batch["annotation_id"][at : at + take], np.int64))
            vecs.append(np.asarray(batch["vector"][at : at + take], np.float32))
            errs.extend(str(e) for e in batch["error"][at : at + take])
            at += take
            if sum(len(i) for i in ids) == need:
                path = out_dir / pending[shard][0]
                got = np.concatenate(ids)
                if not np.array_equal(got, expected[shard]):  # a shard's name promises its ids
                    raise RuntimeError(f"ray embed returned rows out of order for {path.name}")
                _write_shard(path, got, np.concatenate(vecs), errs)
                if on_shard is not None:
                    on_shard(path)
                shard += 1
                ids, vecs, errs = [], [], []
                if shard < len(pending):
                    need = pending[shard][1].stop - pending[shard][1].start
    if shard != len(pending):
        raise RuntimeError(f"ray embed returned {shard} of {len(pending)} shards")
