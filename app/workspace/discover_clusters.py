"""A discovered cluster described and named: its facts (the known species nearest its centre, the
taxon its members are placed at, the frames, sources, sites, dates and depths they come from) and
the members it is named from (see :mod:`app.workspace.discover`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from index.catalog.discoveries import Cluster, ClusterFacts
from index.errors import InvalidInput

if TYPE_CHECKING:
    from app.workspace.engine import Engine


def naming_examples(cluster: Cluster, exemplars: int | None, crops: Sequence[int | str] | None):
    """The members a cluster is named from (see :meth:`app.workspace.discover.Discoverer.name`)."""
    if exemplars is not None and crops is not None:
        raise InvalidInput("give --exemplars or --crops, not both")
    if crops is not None:
        wanted = [str(c).strip() for c in crops if str(c).strip()]
        if not wanted:
            raise InvalidInput(f"no crops selected to name cluster {cluster.id}")
        by_key = {str(m.crop_id if m.crop_id is not None else m.path): m for m in cluster.members}
        strangers = [w for w in wanted if w not in by_key]
        if strangers:
            raise InvalidInput(
                f"crop {strangers[0]} is not a member of cluster {cluster.id}",
                hint=f"see its members with `oceanid discover show {cluster.discovery_id}`",
            )
        return [by_key[w] for w in dict.fromkeys(wanted)]
    if exemplars is not None:
        if exemplars < 1:
            raise InvalidInput(f"--exemplars must be at least 1, got {exemplars}")
        return [*cluster.exemplars, *(m for m in cluster.members if not m.exemplar)][:exemplars]
    return list(cluster.exemplars or cluster.members)


def cluster_facts(
    engine: Engine, vectors: np.ndarray, placed: list, places: dict, ids: np.ndarray, files: bool
) -> ClusterFacts:
    """A cluster's facts from its members' tuned vectors, taxon placements and catalog places."""
    mean = vectors.astype(np.float64).mean(axis=0)
    centre = (mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32)[None, :]
    nearest, similarity = None, None
    if engine.prototypes.names:
        sims = engine.prototypes.similarities(centre)[0]
        best = int(np.argmax(sims))
        nearest, similarity = engine.prototypes.names[best], float(sims[best])
    taxon = rank = share = genus = family = None
    named = [a for a in placed if a.name]
    if named:
        (taxon, rank), count = Counter((a.name, a.rank) for a in named).most_common(1)[0]
        share = count / len(placed)
        genus = likeliest([a.lineage.get("genus") for a in named])
        family = likeliest([a.lineage.get("family") for a in named])
    if files:
        return ClusterFacts(nearest, similarity, taxon, rank, share, genus, family, frames=len(vectors))
    rows = [places[int(i)] for i in ids if int(i) in places]
    sites = Counter(
        f"{p.latitude:.2f},{p.longitude:.2f}" for p in rows if p.latitude is not None and p.longitude is not None
    )
    dates = sorted(p.timestamp for p in rows if p.timestamp is not None)
    depths = [float(p.depth_m) for p in rows if p.depth_m is not None]
    return ClusterFacts(
        nearest,
        similarity,
        taxon,
        rank,
        share,
        genus,
        family,
        frames=len({p.image_id for p in rows}),
        sources=tuple(sorted({p.source for p in rows})),
        sites=tuple(s for s, _ in sorted(sites.items(), key=lambda kv: (-kv[1], kv[0]))),
        first_date=dates[0].date().isoformat() if dates else None,
        last_date=dates[-1].date().isoformat() if dates else None,
        depth_m=(min(depths), max(depths)) if depths else None,
    )


def likeliest(names: list[str | None]) -> str | None:
    given = [n for n in names if n]
    return Counter(given).most_common(1)[0][0] if given else None
