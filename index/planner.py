"""Filtered-query planning: score the allowed set exactly, or search the index with a selector.

A filtered query is answered one of two ways, as mature engines do (Qdrant,
Weaviate, Vespa pick between a brute-force pass over the filtered points and
a filtered graph/IVF walk by the size of the allowed set):

- **exact**: when the allowed set is small, gather its vectors and score
  them all (``a`` dot products per query). The answer is the exact top-k.
- **index**: when it is large, search the ANN index with an id selector and
  a probe width widened as the filter narrows: IVF visits ``nprobe / f``
  lists (``f`` = allowed fraction, capped at nlist), HNSW walks a beam of
  ``ef / f`` (capped). Only allowed ids count toward the k, so a narrow
  filter needs proportionally more of the index visited to find k of them.

The crossover (``exact_max``) is measured by ``bench/search_speed.py`` (section "planner
crossover", bench/RESULTS.md): on 2 cores at d=128 the exact plan is faster up to 5,000
allowed ids and the index plan from 10,000, for IVF (200k) and HNSW (50k) alike.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

MODES = ("exact", "index")


@dataclass(frozen=True)
class PlannerConfig:
    """When a filtered query is scored exactly, and how wide the index search goes otherwise."""

    exact_max: int = 5_000  # allowed sets up to this size are scored exactly (measured crossover 5k-10k)
    exact_fraction: float = 0.02  # ... and any set below this fraction of the collection
    ivf_widen: float = 1.0  # IVF nprobe = nprobe * ivf_widen / fraction, capped at nlist
    hnsw_widen: float = 1.0  # HNSW efSearch = ef * hnsw_widen / fraction
    hnsw_max_ef: int = 2048  # cap on the widened HNSW beam

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FilterPlan:
    """How one filtered search runs: ``mode`` 'exact' or 'index', and the probe width for 'index'."""

    mode: str
    allowed: int  # allowed ids present in the index
    probe: int | None = None  # IVF nprobe or HNSW efSearch for mode 'index'; None for flat/exact

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_filtered(
    kind: str,
    ntotal: int,
    allowed: int,
    k: int,
    nprobe: int = 1,
    nlist: int = 1,
    ef_search: int = 16,
    config: PlannerConfig | None = None,
) -> FilterPlan:
    """Choose how to run a query restricted to ``allowed`` of ``ntotal`` ids.

    Args:
        kind: 'flat' | 'ivf' | 'hnsw'.
        ntotal: vectors in the index (> 0).
        allowed: allowed ids that are present in the index (>= 0).
        k: hits wanted per query.
        nprobe, nlist: the IVF index's current settings.
        ef_search: the HNSW index's current beam width.
    """
    cfg = config or PlannerConfig()
    fraction = min(1.0, allowed / max(ntotal, 1))
    if kind == "flat":
        # the flat index is exact either way; a gather of a small set beats scanning all n
        mode = "exact" if allowed <= cfg.exact_max and fraction < 0.5 else "index"
        return FilterPlan(mode, allowed)
    if allowed <= cfg.exact_max or fraction < cfg.exact_fraction:
        return FilterPlan("exact", allowed)
    if kind == "ivf":
        probe = min(nlist, max(nprobe, math.ceil(nprobe * cfg.ivf_widen / fraction)))
        return FilterPlan("index", allowed, probe)
    ef = max(ef_search, k, math.ceil(ef_search * cfg.hnsw_widen / fraction))
    return FilterPlan("index", allowed, int(min(ef, max(cfg.hnsw_max_ef, k))))
