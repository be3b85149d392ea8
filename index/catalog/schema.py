"""The catalog's tables and views (DuckDB DDL, idempotent) and the migration of an older catalog.

:meth:`index.catalog.catalog.Catalog.ensure_schema` runs :data:`SCHEMA` and :func:`migrate` when the
stored ``schema_version`` is below :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import duckdb

SCHEMA_VERSION = 7  # 2: lineage views, taxa_undo; self-parented taxa (a v1 bug) reset. 3: decisions.
# 5: detectors. 6: annotations.origin (truth | predicted) and detection_score. 7: discoveries

SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS image_ids START 1;
CREATE SEQUENCE IF NOT EXISTS annotation_ids START 1;
CREATE TABLE IF NOT EXISTS images (
    image_id BIGINT PRIMARY KEY DEFAULT nextval('image_ids'),
    source VARCHAR NOT NULL,          -- synthetic | coco | folders | fathomnet | added
    source_id VARCHAR NOT NULL,       -- the image's id within its source
    sha256 VARCHAR NOT NULL,          -- content hash; the stored file is named by it
    path VARCHAR NOT NULL,            -- relative to the home folder
    width INTEGER NOT NULL,           -- after EXIF orientation
    height INTEGER NOT NULL,
    depth_m DOUBLE,
    latitude DOUBLE,
    longitude DOUBLE,
    "timestamp" TIMESTAMP,
    temperature_c DOUBLE,
    salinity DOUBLE,
    oxygen_ml_l DOUBLE,
    imaging_type VARCHAR,
    url VARCHAR,
    added_at TIMESTAMP DEFAULT current_timestamp
);
CREATE UNIQUE INDEX IF NOT EXISTS images_source_key ON images (source, source_id);
CREATE TABLE IF NOT EXISTS annotations (
    annotation_id BIGINT PRIMARY KEY DEFAULT nextval('annotation_ids'),
    image_id BIGINT NOT NULL,
    concept VARCHAR NOT NULL,
    x DOUBLE NOT NULL, y DOUBLE NOT NULL, w DOUBLE NOT NULL, h DOUBLE NOT NULL,
    source_id VARCHAR,                -- the box's id in its source
    group_key VARCHAR NOT NULL,       -- near-duplicates share a key; splits never cut one
    crop_path VARCHAR,                -- relative to home; NULL until cut
    split VARCHAR,                    -- train | val | test | holdout | support | NULL
    split_pinned BOOLEAN NOT NULL DEFAULT false
);
-- truth: a box a person or a data set drew; predicted: a box the cascade found (`identify --save`),
-- its concept the species it was identified as (or "unknown"); predicted crops never get a split
ALTER TABLE annotations ADD COLUMN IF NOT EXISTS origin VARCHAR DEFAULT 'truth';
ALTER TABLE annotations ADD COLUMN IF NOT EXISTS detection_score DOUBLE;  -- the detector's score (predicted)
CREATE TABLE IF NOT EXISTS taxa (
    concept VARCHAR PRIMARY KEY,
    rank VARCHAR,
    parent VARCHAR,
    holdout_hint VARCHAR              -- set by the synthetic reef: near | far | other
);
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS models (
    model_id VARCHAR PRIMARY KEY,
    config_hash VARCHAR NOT NULL,
    dim INTEGER NOT NULL,
    backbone VARCHAR,
    created_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS detectors (        -- class-agnostic detector folders (index/catalog/detectors.py)
    detector_id VARCHAR PRIMARY KEY,  -- its folder: models/<detector_id>
    config_hash VARCHAR NOT NULL,
    arch VARCHAR NOT NULL,
    image_size INTEGER NOT NULL,
    train_frames INTEGER, val_frames INTEGER,
    epochs INTEGER,                   -- epochs trained so far
    best_epoch INTEGER,               -- the epoch kept (best val mAP@0.5)
    val_map50 DOUBLE,                 -- pycocotools mAP@0.5 on the val frames at that epoch
    seconds DOUBLE,                   -- training time, all runs of a resumed training together
    created_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS embeddings (
    annotation_id BIGINT NOT NULL,
    model_id VARCHAR NOT NULL,
    vector FLOAT[] NOT NULL,          -- L2-normalised, length = models.dim
    PRIMARY KEY (annotation_id, model_id)
);
CREATE TABLE IF NOT EXISTS prototypes (
    model_id VARCHAR NOT NULL,
    concept VARCHAR NOT NULL,
    k INTEGER NOT NULL,               -- sub-centre number within the concept
    origin VARCHAR NOT NULL,          -- train | added
    vector FLOAT[] NOT NULL,
    PRIMARY KEY (model_id, concept, k)
);
CREATE TABLE IF NOT EXISTS decisions (        -- how a model's engine judges crops (index/catalog/decisions.py)
    model_id VARCHAR PRIMARY KEY,
    prototypes_digest VARCHAR NOT NULL,  -- sha256 of the trained prototypes decided on
    payload VARCHAR NOT NULL,            -- Decision.to_dict() as JSON
    decided_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS taxa_undo (        -- what `species add` changed, so `remove` restores it
    added VARCHAR NOT NULL,           -- the species added
    concept VARCHAR NOT NULL,         -- a taxa row the add inserted or changed
    existed BOOLEAN NOT NULL,         -- false: the add inserted it (remove deletes it)
    rank VARCHAR, parent VARCHAR, holdout_hint VARCHAR,  -- the row before the add
    PRIMARY KEY (added, concept)
);
-- `oceanid discover` (index/catalog/discoveries.py): a run, its clusters, their members; a run is never
-- edited once written; naming a cluster adds a row to discovery_names
CREATE SEQUENCE IF NOT EXISTS discovery_ids START 1;
CREATE SEQUENCE IF NOT EXISTS discovery_cluster_ids START 1;
CREATE TABLE IF NOT EXISTS discoveries (
    discovery_id BIGINT PRIMARY KEY,
    model_id VARCHAR NOT NULL,
    generation VARCHAR,               -- the live index generation of the model when it ran
    space VARCHAR NOT NULL,           -- tuned | general | fused: where the crops were clustered
    params VARCHAR NOT NULL,          -- ClusterParams and the selection, as JSON
    input_digest VARCHAR NOT NULL,    -- sha256 of the clustered crops (ids or files) and their vectors
    inputs INTEGER NOT NULL,          -- crops considered; ``unknown`` of them were clustered
    unknown INTEGER NOT NULL,
    created_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS discovery_clusters (
    cluster_id BIGINT PRIMARY KEY,
    discovery_id BIGINT NOT NULL,
    number INTEGER NOT NULL,          -- 1 = the largest cluster of its run
    size INTEGER NOT NULL,
    cohesion DOUBLE NOT NULL,         -- mean cosine of its members to its centre
    facts VARCHAR NOT NULL            -- nearest known species, likeliest taxon, frames / sites / dates (JSON)
);
CREATE TABLE IF NOT EXISTS discovery_members (
    cluster_id BIGINT NOT NULL,
    position INTEGER NOT NULL,        -- 0 = nearest the centre
    annotation_id BIGINT,             -- a catalog crop, or NULL for a file of `discover --images`
    path VARCHAR,                     -- that file (absolute)
    distance DOUBLE NOT NULL,         -- 1 - cosine to the centre
    exemplar BOOLEAN NOT NULL,
    PRIMARY KEY (cluster_id, position)
);
CREATE TABLE IF NOT EXISTS discovery_names (
    cluster_id BIGINT NOT NULL,
    species VARCHAR NOT NULL,         -- the species `discover name` added from the cluster
    payload VARCHAR NOT NULL,         -- what the naming did (JSON: examples used, members answered as it)
    named_at TIMESTAMP DEFAULT current_timestamp
);
-- every concept with each ancestor (itself included) at a known rank; cycles stop at depth 40
CREATE OR REPLACE VIEW taxon_ranks AS
WITH RECURSIVE up(concept, node, depth) AS (
    SELECT concept, concept, 0 FROM taxa
    UNION ALL
    SELECT up.concept, t.parent, up.depth + 1
    FROM up JOIN taxa t ON t.concept = up.node
    WHERE t.parent IS NOT NULL AND t.parent <> t.concept AND up.depth < 40
)
SELECT up.concept, t.rank, arg_min(t.concept, up.depth) AS name
FROM up JOIN taxa t ON t.concept = up.node
WHERE t.rank IS NOT NULL
GROUP BY up.concept, t.rank;
CREATE OR REPLACE VIEW taxon_lineage AS
SELECT t.concept, t.rank AS label_rank,
       max(r.name) FILTER (WHERE r.rank = 'kingdom') AS kingdom,
       max(r.name) FILTER (WHERE r.rank = 'phylum') AS phylum,
       max(r.name) FILTER (WHERE r.rank = 'class') AS "class",
       max(r.name) FILTER (WHERE r.rank = 'order') AS "order",
       max(r.name) FILTER (WHERE r.rank = 'family') AS family,
       max(r.name) FILTER (WHERE r.rank = 'subfamily') AS subfamily,
       max(r.name) FILTER (WHERE r.rank = 'genus') AS genus,
       max(r.name) FILTER (WHERE r.rank = 'species') AS species_name
FROM taxa t LEFT JOIN taxon_ranks r USING (concept)
GROUP BY t.concept, t.rank;
-- ``species`` is the crop's label (its concept, at whatever rank); ``label_rank`` says which rank
CREATE OR REPLACE VIEW crop_meta AS
SELECT a.annotation_id, a.image_id, a.concept AS species,
       l.genus, l.family,
       i.depth_m, i."timestamp", i.latitude, i.longitude,
       a.split, i.source, a.crop_path, a.group_key, i.path AS image_path,
       i.imaging_type,
       l.label_rank, l.kingdom, l.phylum, l."class", l."order", l.subfamily,
       coalesce(a.origin, 'truth') AS origin, a.detection_score
FROM annotations a
JOIN images i USING (image_id)
LEFT JOIN taxon_lineage l ON l.concept = a.concept;
"""


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a catalog written by an older version up to :data:`SCHEMA_VERSION` (idempotent).

    v1 -> v2: a label above species rank (a family folder "Scaridae") was stored as a
    species whose parent was itself; such rows lose that rank and parent, so the next
    ingest or ``oceanid taxa import`` puts them at their real rank.
    """
    con.execute("UPDATE taxa SET rank = NULL, parent = NULL WHERE parent = concept")
