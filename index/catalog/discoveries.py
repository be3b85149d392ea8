"""Discovery runs in the catalog: the clusters `oceanid discover` found among crops answered unknown.

A run (``discoveries``) records the model, its live index generation, the vector space, the
parameters and a digest of what was clustered; its clusters (``discovery_clusters``, ids unique
across runs, so ``discover name 12`` needs no run number) hold their size, cohesion and facts, and
their members (``discovery_members``) each crop id (or image file) with its distance to the centre,
nearest first. A run is written once in one transaction and never edited: naming a cluster appends
a row to ``discovery_names``. :func:`find_discovery` finds a run made from the same inputs, so
discovering again reads it back instead of writing a twin.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from index.catalog.catalog import Catalog
from index.errors import NotFound


@dataclass(frozen=True)
class Member:
    """One clustered crop: a catalog crop (``crop_id``) or a file of ``discover --images`` (``path``)."""

    crop_id: int | None
    path: str | None  # the crop's file (absolute), or the image file discovered in
    distance: float  # 1 - cosine to the cluster's centre
    exemplar: bool = False  # among the members nearest the centre, offered to name the cluster

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.crop_id is None else {"crop_id": self.crop_id}
        return {**out, "path": self.path, "distance": self.distance, "exemplar": self.exemplar}


@dataclass(frozen=True)
class ClusterFacts:
    """What is known about a cluster besides its members (stored as JSON with it)."""

    nearest_species: str | None = None  # the known species whose prototype is nearest the centre
    nearest_similarity: float | None = None  # its cosine to the centre
    taxon: str | None = None  # the taxon most members are placed at (held-out evidence), if any
    taxon_rank: str | None = None
    taxon_share: float | None = None  # share of the members placed at it
    genus: str | None = None  # the likeliest genus / family among the members' placements
    family: str | None = None
    frames: int = 0  # distinct frames (images) the members were cut from
    sources: tuple[str, ...] = ()  # the sources they come from
    sites: tuple[str, ...] = ()  # distinct positions (lat, lon to 0.01 degree), most members first
    first_date: str | None = None  # ISO dates of the earliest and latest member
    last_date: str | None = None
    depth_m: tuple[float, float] | None = None  # shallowest and deepest member

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["sources"], out["sites"] = list(self.sources), list(self.sites)
        out["depth_m"] = list(self.depth_m) if self.depth_m is not None else None
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClusterFacts:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["sources"] = tuple(known.get("sources", ()))
        known["sites"] = tuple(known.get("sites", ()))
        if known.get("depth_m") is not None:
            known["depth_m"] = tuple(float(v) for v in known["depth_m"])
        return cls(**known)


@dataclass(frozen=True)
class ClusterNaming:
    """A species added from a cluster (``discover name``)."""

    cluster_id: int
    species: str
    payload: dict[str, Any]  # examples used, generation, members answered as the species
    named_at: Any = None

    def to_dict(self) -> dict[str, Any]:
        when = self.named_at.isoformat() if hasattr(self.named_at, "isoformat") else self.named_at
        return {"cluster_id": self.cluster_id, "species": self.species, **self.payload, "named_at": when}


@dataclass(frozen=True)
class Cluster:
    """One cluster of a discovery run (members nearest the centre first)."""

    id: int  # unique across runs
    discovery_id: int
    number: int  # 1 = the largest of its run
    size: int
    cohesion: float  # mean cosine of the members to the centre
    facts: ClusterFacts
    members: tuple[Member, ...] = ()
    names: tuple[ClusterNaming, ...] = ()  # species added from it, oldest first

    @property
    def exemplars(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.exemplar)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "discovery_id": self.discovery_id,
            "number": self.number,
            "size": self.size,
            "cohesion": self.cohesion,
            **self.facts.to_dict(),
            "named": [n.species for n in self.names],
            "exemplars": [m.to_dict() for m in self.exemplars],
            "members": [m.to_dict() for m in self.members],
        }


@dataclass(frozen=True)
class Discovery:
    """A discovery run and its clusters (largest first)."""

    id: int
    model_id: str
    generation: str | None
    space: str
    params: dict[str, Any]
    input_digest: str
    inputs: int  # crops considered
    unknown: int  # of them answered unknown, and clustered
    clusters: tuple[Cluster, ...] = ()
    created_at: Any = None
    reused: bool = False  # True: the same inputs were discovered before; this is that run, read back

    @property
    def clustered(self) -> int:
        return sum(c.size for c in self.clusters)

    def to_dict(self) -> dict[str, Any]:
        when = self.created_at.isoformat() if hasattr(self.created_at, "isoformat") else self.created_at
        return {
            "id": self.id,
            "model_id": self.model_id,
            "generation": self.generation,
            "space": self.space,
            "params": dict(self.params),
            "input_digest": self.input_digest,
            "inputs": self.inputs,
            "unknown": self.unknown,
            "clustered": self.clustered,
            "noise": self.unknown - self.clustered,
            "created_at": when,
            "reused": self.reused,
            "clusters": [c.to_dict() for c in self.clusters],
        }


@dataclass(frozen=True)
class NewCluster:
    """A cluster to store: its members as (crop id or None, path or None, distance, exemplar), nearest first."""

    size: int
    cohesion: float
    facts: ClusterFacts
    members: Sequence[tuple[int | None, str | None, float, bool]] = field(default_factory=tuple)


def params_json(params: dict[str, Any]) -> str:
    """The canonical JSON of a run's parameters (what :func:`find_discovery` compares)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def find_discovery(
    catalog: Catalog, model_id: str, generation: str | None, space: str, params: dict[str, Any], digest: str
) -> int | None:
    """The id of the newest run made from exactly these inputs, or None."""
    if not catalog.exists():
        return None
    with catalog.read() as con:
        row = con.execute(
            "SELECT max(discovery_id) FROM discoveries WHERE model_id = ? AND generation IS NOT DISTINCT FROM ? "
            "AND space = ? AND params = ? AND input_digest = ?",
            [model_id, generation, space, params_json(params), digest],
        ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def store_discovery(
    catalog: Catalog,
    model_id: str,
    generation: str | None,
    space: str,
    params: dict[str, Any],
    digest: str,
    inputs: int,
    unknown: int,
    clusters: Sequence[NewCluster],
) -> int:
    """Write a run, its clusters (numbered 1.. in the given order) and their members in one
    transaction; returns the run's id."""
    with catalog.write() as con:
        run = int(con.execute("SELECT nextval('discovery_ids')").fetchone()[0])
        con.execute(
            "INSERT INTO discoveries (discovery_id, model_id, generation, space, params, input_digest, inputs, "
            "unknown) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [run, model_id, generation, space, params_json(params), digest, int(inputs), int(unknown)],
        )
        cids, positions, crop_ids, paths, distances, exemplars = [], [], [], [], [], []
        for number, cluster in enumerate(clusters, start=1):
            cid = int(con.execute("SELECT nextval('discovery_cluster_ids')").fetchone()[0])
            con.execute(
                "INSERT INTO discovery_clusters VALUES (?, ?, ?, ?, ?, ?)",
                [cid, run, number, int(cluster.size), float(cluster.cohesion), json.dumps(cluster.facts.to_dict())],
            )
            for position, (crop_id, path, distance, exemplar) in enumerate(cluster.members):
                cids.append(cid)
                positions.append(position)
                crop_ids.append(None if crop_id is None else int(crop_id))
                paths.append(path)
                distances.append(float(distance))
                exemplars.append(bool(exemplar))
        if cids:
            table = pa.table(
                {
                    "cluster_id": pa.array(cids, pa.int64()),
                    "position": pa.array(positions, pa.int32()),
                    "annotation_id": pa.array(crop_ids, pa.int64()),
                    "path": pa.array(paths, pa.string()),
                    "distance": pa.array(distances, pa.float64()),
                    "exemplar": pa.array(exemplars, pa.bool_()),
                }
            )
            con.register("incoming_members", table)
            con.execute("INSERT INTO discovery_members SELECT * FROM incoming_members")
            con.unregister("incoming_members")
    return run


def _run_row(con, discovery_id: int) -> tuple:
    row = con.execute(
        "SELECT discovery_id, model_id, generation, space, params, input_digest, inputs, unknown, created_at "
        "FROM discoveries WHERE discovery_id = ?",
        [int(discovery_id)],
    ).fetchone()
    if row is None:
        raise NotFound(f"no discovery run {discovery_id}", hint="list the runs with `oceanid discover list`")
    return row


def _members(con, cluster_ids: Sequence[int], home: Path) -> dict[int, list[Member]]:
    rows = con.execute(
        "SELECT m.cluster_id, m.annotation_id, coalesce(m.path, a.crop_path), m.distance, m.exemplar "
        "FROM discovery_members m LEFT JOIN annotations a USING (annotation_id) "
        "WHERE m.cluster_id IN (SELECT unnest(?)) ORDER BY m.cluster_id, m.position",
        [[int(c) for c in cluster_ids]],
    ).fetchall()
    out: dict[int, list[Member]] = {}
    for cid, crop_id, path, distance, exemplar in rows:
        where = None if path is None else str(path if crop_id is None else home / path)
        out.setdefault(int(cid), []).append(
            Member(None if crop_id is None else int(crop_id), where, float(distance), bool(exemplar))
        )
    return out


def _names(con, cluster_ids: Sequence[int]) -> dict[int, list[ClusterNaming]]:
    rows = con.execute(
        "SELECT cluster_id, species, payload, named_at FROM discovery_names WHERE cluster_id IN (SELECT unnest(?)) "
        "ORDER BY named_at, species",
        [[int(c) for c in cluster_ids]],
    ).fetchall()
    out: dict[int, list[ClusterNaming]] = {}
    for cid, species, payload, when in rows:
        out.setdefault(int(cid), []).append(ClusterNaming(int(cid), species, json.loads(payload), when))
    return out


def _clusters(con, where: str, param: int, home: Path, members: bool) -> list[Cluster]:
    rows = con.execute(
        f"SELECT cluster_id, discovery_id, number, size, cohesion, facts FROM discovery_clusters WHERE {where} "
        "ORDER BY discovery_id, number",
        [int(param)],
    ).fetchall()
    ids = [int(r[0]) for r in rows]
    found = _members(con, ids, home) if members and ids else {}
    named = _names(con, ids) if ids else {}
    return [
        Cluster(
            int(r[0]),
            int(r[1]),
            int(r[2]),
            int(r[3]),
            float(r[4]),
            ClusterFacts.from_dict(json.loads(r[5])),
            tuple(found.get(int(r[0]), ())),
            tuple(named.get(int(r[0]), ())),
        )
        for r in rows
    ]


def _discovery(row: tuple, clusters: Sequence[Cluster]) -> Discovery:
    return Discovery(
        int(row[0]),
        row[1],
        row[2],
        row[3],
        json.loads(row[4]),
        row[5],
        int(row[6]),
        int(row[7]),
        tuple(clusters),
        row[8],
    )


def load_discovery(catalog: Catalog, discovery_id: int, home: Path, members: bool = True) -> Discovery:
    """A stored run with its clusters (and their members unless ``members`` is False); member
    paths are absolute (catalog crops under ``home``). Raises NotFound."""
    _require(catalog)
    with catalog.read() as con:
        row = _run_row(con, discovery_id)
        return _discovery(row, _clusters(con, "discovery_id = ?", discovery_id, home, members))


def list_discoveries(catalog: Catalog, home: Path) -> list[Discovery]:
    """Every stored run, newest first, with its clusters (without their members)."""
    if not catalog.exists():
        return []
    with catalog.read() as con:
        ids = [int(r[0]) for r in con.execute("SELECT discovery_id FROM discoveries ORDER BY 1 DESC").fetchall()]
        return [_discovery(_run_row(con, i), _clusters(con, "discovery_id = ?", i, home, False)) for i in ids]


def load_cluster(catalog: Catalog, cluster_id: int, home: Path) -> Cluster:
    """One stored cluster with its members and namings. Raises NotFound."""
    _require(catalog)
    with catalog.read() as con:
        found = _clusters(con, "cluster_id = ?", cluster_id, home, True)
    if not found:
        raise NotFound(
            f"no discovered cluster {cluster_id}", hint="see the clusters with `oceanid discover list` / `show RUN`"
        )
    return found[0]


def record_naming(catalog: Catalog, cluster_id: int, species: str, payload: dict[str, Any]) -> None:
    """Append what naming ``cluster_id`` did (the run itself is never edited)."""
    with catalog.write() as con:
        con.execute(
            "INSERT INTO discovery_names (cluster_id, species, payload) VALUES (?, ?, ?)",
            [int(cluster_id), species, json.dumps(payload)],
        )


def _require(catalog: Catalog) -> None:
    if not catalog.exists():
        raise NotFound(f"no catalog at {catalog.path}", hint="ingest data first, e.g. `oceanid demo`")


@dataclass(frozen=True)
class CropPlace:
    """Where and when a crop was seen (what a cluster's facts summarise)."""

    crop_id: int
    image_id: int
    source: str
    latitude: float | None
    longitude: float | None
    timestamp: Any  # datetime or None
    depth_m: float | None


def crop_places(catalog: Catalog, crop_ids: Sequence[int]) -> dict[int, CropPlace]:
    """Each catalog crop id's frame, source, position, time and depth (ids not in the catalog left out)."""
    ids = sorted({int(i) for i in crop_ids})
    if not ids:
        return {}
    with catalog.read() as con:
        rows = con.execute(
            'SELECT annotation_id, image_id, source, latitude, longitude, "timestamp", depth_m FROM crop_meta '
            "WHERE annotation_id IN (SELECT unnest(?))",
            [ids],
        ).fetchall()
    return {int(r[0]): CropPlace(int(r[0]), int(r[1]), *r[2:]) for r in rows}
