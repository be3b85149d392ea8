"""The survey behind ``oceanid stats``: what the catalog holds, like a database survey."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from index.catalog.catalog import Catalog
from index.catalog.splits import merge_groups
from index.records import HOLDOUT
from index.taxonomy import RANKS


@dataclass
class Survey:
    """The survey behind ``oceanid stats``."""

    images: int = 0
    crops: int = 0
    species: int = 0
    per_species: dict[str, int] = field(default_factory=dict)  # crops per species, most first
    crops_per_species: dict[str, float] = field(default_factory=dict)  # total, mean, median, max, min
    per_split: dict[str, int] = field(default_factory=dict)
    # rank -> {"taxa": distinct taxa at that rank, "crops": crops with a taxon there, "labelled": crops
    # labelled at that rank}, over the 7 standard ranks (``index.taxonomy.RANKS``)
    per_rank: dict[str, dict[str, int]] = field(default_factory=dict)
    per_source: dict[str, int] = field(default_factory=dict)
    depth: dict[str, float | int | None] = field(default_factory=dict)  # count, min, median, max
    depth_histogram: list[tuple[float, float, int]] = field(default_factory=list)  # (from, to, crops)
    depths: list[float] = field(default_factory=list)  # raw crop depths, for plots
    duplicate_frames: int = 0  # frames whose bytes equal an earlier frame's (same sha256)
    groups_merged: int = 0  # group keys a split folds into another group because they share a frame

    def to_dict(self, with_raw: bool = False) -> dict:
        out = asdict(self)
        if not with_raw:
            out.pop("depths")
        return out


def survey(catalog: Catalog, bins: int = 10) -> Survey:
    """Counts per species, split and source, and the depth distribution of crops."""
    out = Survey()
    with catalog.read() as con:
        out.images = con.execute("SELECT count(*) FROM images").fetchone()[0]
        out.per_species = dict(
            con.execute(
                "SELECT concept, count(*) n FROM annotations GROUP BY concept ORDER BY n DESC, concept"
            ).fetchall()
        )
        out.per_split = dict(
            con.execute(
                "SELECT coalesce(split, 'unassigned'), count(*) FROM annotations GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        out.per_source = dict(
            con.execute(
                "SELECT source, count(*) FROM annotations JOIN images USING (image_id) GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        out.depths = [
            r[0]
            for r in con.execute(
                "SELECT depth_m FROM annotations JOIN images USING (image_id) WHERE depth_m IS NOT NULL"
            ).fetchall()
        ]
        out.duplicate_frames = con.execute("SELECT count(*) - count(DISTINCT sha256) FROM images").fetchone()[0]
        for rank in RANKS:
            col = "species_name" if rank == "species" else rank
            taxa, crops, labelled = con.execute(
                f'SELECT count(DISTINCT l."{col}"), count(l."{col}"), count(*) FILTER (WHERE l.label_rank = ?) '
                "FROM annotations a LEFT JOIN taxon_lineage l ON l.concept = a.concept",
                [rank],
            ).fetchone()
            out.per_rank[rank] = {"taxa": int(taxa), "crops": int(crops), "labelled": int(labelled)}
        keys = con.execute("SELECT a.group_key, i.sha256 FROM annotations a JOIN images i USING (image_id)").fetchall()
    out.groups_merged = merge_groups([k for k, _ in keys], [h for _, h in keys])[1]
    counts = np.array(list(out.per_species.values()), dtype=np.int64)
    out.crops = int(counts.sum()) if counts.size else 0
    out.species = len(counts)
    if counts.size:
        out.crops_per_species = {
            "total": int(counts.sum()),
            "mean": float(counts.mean()),
            "median": float(np.median(counts)),
            "max": int(counts.max()),
            "min": int(counts.min()),
        }
    depths = np.asarray(out.depths, dtype=np.float64)
    out.depth = {"count": int(depths.size)}
    if depths.size:
        out.depth.update(min=float(depths.min()), median=float(np.median(depths)), max=float(depths.max()))
        hist, edges = np.histogram(depths, bins=bins)
        out.depth_histogram = [
            (float(a), float(b), int(n)) for a, b, n in zip(edges[:-1], edges[1:], hist, strict=False)
        ]
    return out


@dataclass(frozen=True)
class Counts:
    """What ``status`` reports: images, crops and species in the catalog."""

    images: int
    crops: int
    species: int


def counts(catalog: Catalog) -> Counts:
    """Images, crops (annotations) and distinct species in the catalog."""
    with catalog.read() as con:
        images = con.execute("SELECT count(*) FROM images").fetchone()[0]
        crops, species = con.execute("SELECT count(*), count(DISTINCT concept) FROM annotations").fetchone()
    return Counts(int(images), int(crops), int(species))


@dataclass(frozen=True)
class SpeciesRow:
    """One species of the catalog for the species browser (crop paths relative to the home)."""

    name: str
    genus: str | None
    family: str | None
    count: int
    examples: list[str]  # the first crops, by id
    held_out: bool  # some crop is in the holdout split
    in_split: bool  # some crop has a split at all


def species_rows(catalog: Catalog, examples: int = 4) -> list[SpeciesRow]:
    """Every species with its taxa, crop count, first ``examples`` crops and split flags."""
    with catalog.read() as con:
        rows = con.execute(
            "SELECT species, any_value(genus), any_value(family), count(*), "
            "list(crop_path ORDER BY annotation_id)[1:?], bool_or(split = ?), bool_or(split IS NOT NULL) "
            "FROM crop_meta GROUP BY species ORDER BY species",
            [examples, HOLDOUT],
        ).fetchall()
    return [SpeciesRow(n, g, f, int(c), [p for p in ex if p], bool(h), bool(u)) for n, g, f, c, ex, h, u in rows]


def concepts(catalog: Catalog) -> list[str]:
    """Every concept that labels at least one crop, sorted."""
    if not catalog.exists():
        return []
    with catalog.read() as con:
        return [r[0] for r in con.execute("SELECT DISTINCT concept FROM annotations ORDER BY 1").fetchall()]


def source_ids(catalog: Catalog, source: str) -> set[str]:
    """The ids (within their source) of the images already catalogued from ``source``."""
    if not catalog.exists():
        return set()
    with catalog.read() as con:
        return {r[0] for r in con.execute("SELECT source_id FROM images WHERE source = ?", [source]).fetchall()}
