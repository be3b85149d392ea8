"""``oceanid embed --engine ray``: the catalog's crops embedded on a Ray cluster.

The catalog hands out the crops to embed as an Arrow table and the catalog is closed
while Ray computes (``embedder/ray_runner.py`` writes Parquet shards under
``<home>/staging/embed/<model-id>/``); the shards are then ingested in one
transaction and deleted. A run killed before the ingest leaves its whole shards in
staging, and the next run over the same crops reuses them (resume).
"""

from __future__ import annotations

import logging
import shutil

import pyarrow as pa
import pyarrow.compute as pc

from app.workspace.pipeline import EmbedReport
from embedder.ray_runner import RayConfig, RayEmbedResult, embed_on_ray
from index.catalog.arrow_io import crops_to_embed, ingest_vector_shards
from index.catalog.catalog import Catalog
from index.catalog.embeddings import crop_count, register_model
from index.errors import InvalidInput
from index.home import Home

log = logging.getLogger(__name__)


def staging_dir(home: Home, model_id: str):
    """Where a Ray run's Parquet shards wait for the ingest."""
    return home.root / "staging" / "embed" / model_id


def embed_crops_ray(
    catalog: Catalog, home: Home, model_id: str, config: RayConfig
) -> tuple[EmbedReport, RayEmbedResult]:
    """Embed every crop without a vector for ``model_id`` on Ray; store them in one transaction.

    Raises:
        InvalidInput: Ray is not installed, or a bad config.
    """
    from embedder.model import config_hash, read_config

    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise InvalidInput("the Ray engine needs Ray: pip install 'oceanid[scale]'") from exc
    folder = home.model(model_id)
    model_config = read_config(folder)
    digest = config_hash(folder)
    register_model(catalog, model_id, digest, model_config.vector_dim, model_config.backbone)
    todo = crops_to_embed(catalog, model_id)
    report = EmbedReport(model_id, already=crop_count(catalog) - todo.num_rows)
    root = str(home.root) + "/"
    crops = pa.table(
        {
            "annotation_id": todo.column("annotation_id"),
            "path": pc.binary_join_element_wise(root, todo.column("crop_path"), ""),
        }
    )
    out = staging_dir(home, model_id)
    result = embed_on_ray(crops, folder, out, config, digest)
    if result.shards:
        ingest = ingest_vector_shards(catalog, model_id, list(result.shards))
        report.embedded = ingest.stored
        paths = dict(zip(todo.column("annotation_id").to_pylist(), todo.column("crop_path").to_pylist(), strict=False))
        report.failed = [(str(home.resolve(paths[i])), reason) for i, reason in ingest.failed]
    shutil.rmtree(out, ignore_errors=True)  # ingested: the catalog holds them now
    log.info(
        "ray embed %s: %d stored, %d failed, %d reused shard rows",
        model_id,
        report.embedded,
        len(report.failed),
        result.reused,
    )
    return report, result
