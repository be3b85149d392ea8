"""Filtered-query planning: score the allowed set exactly, or search the index with a selector.

A filtered query is answered one of three ways, as mature engines do (Qdrant,
Weaviate, Vespa pick between a brute-force pass over the filtered points and
a filtered graph/IVF walk by the size of the allowed set):

- **exact** (gather): when the allowed set is small, gather its vectors and
  score them all (``a`` dot products per query). The answer is the exact top-k.
- **lists** (IVF only, also exact): scan, with the id selector, every inverted
  list that holds an allowed id. IVF-Flat stores the vectors themselves, so this
  is the exact top-k too; it is cheap when the filter is correlated with the
  embedding (a species, a site, a depth band), because then few lists hold any
  allowed id.
- **index**: otherwise search the ANN index with the selector. IVF probes the
  ``nprobe * ivf_widen * sqrt(nlist / holding lists)`` nearest lists *among
  those holding allowed ids* (lists without any are skipped, so a correlated
  filter does not waste its probes on empty lists, and gets more of them: its
  nearest allowed ids lie in thin slivers of many lists at the region's edge). HNSW walks a beam of
  ``16 ef / f`` (capped at 2,048), and only
  for filters allowing at least half the collection: a filtered graph walk loses
  most answers when the filter is correlated with the embedding (measured on a
  60k index: recall@10 0.55 for a 10% "region" filter at ``ef / f``, 0.95 at
  ``4 ef / f``; the exact plan is faster there anyway), so below that HNSW
  scores the allowed set exactly.

Every figure here is measured by ``bench/search_speed.py`` (bench/RESULTS.md,
"Search speed and filtered search"): at 1M x 128 IVF (nlist 1000, nprobe 32) a
random 10% filter needs no wider probe than the unfiltered search for recall@10
1.0, a random 1% filter needs 2x nprobe for >= 0.99 and a random 0.2% filter
stays below 0.98 even at 4x, so sets under ``exact_fraction`` are always scored
exactly; between gather and lists the cheaper is taken by a cost model (one
gathered vector costs about ``gather_cost`` scanned list entries).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

MODES = ("exact", "lists", "index")


@dataclass(frozen=True)
class PlannerConfig:
    """When a filtered query is scored exactly, and how wide the index search goes otherwise."""

    exact_max: int = 2_000  # allowed sets up to this size are scored exactly (gathered)
    exact_fraction: float = 0.01  # ... and any set below this fraction of the collection (gather or lists)
    ivf_widen: float = 2.0  # IVF probes nprobe * ivf_widen of the lists holding allowed ids
    lists_factor: float = 2.0  # IVF scans every holding list when they hold <= this x the index plan's entries
    gather_cost: float = 90.0  # one gathered IVF vector costs about this many scanned list entries
    hnsw_exact_fraction: float = 0.5  # HNSW scores every allowed set below this fraction exactly
    hnsw_widen: float = 16.0  # HNSW efSearch = ef * hnsw_widen / fraction above it
    hnsw_max_ef: int = 2048  # cap on the widened HNSW beam

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FilterPlan:
    """How one filtered search runs: ``mode`` 'exact' or 'index', and the probe width for 'index'."""

    mode: str
    allowed: int  # allowed ids present in the index
    probe: int | None = None  # lists (IVF) or efSearch (HNSW) for modes 'lists'/'index'; None for exact

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
    holding_lists: int | None = None,
    holding_entries: int | None = None,
) -> FilterPlan:
    """Choose how to run a query restricted to ``allowed`` of ``ntotal`` ids.

    Args:
        kind: 'flat' | 'ivf' | 'hnsw'.
        ntotal: vectors in the index (> 0).
        allowed: allowed ids that are present in the index (>= 0).
        k: hits wanted per query.
        nprobe, nlist: the IVF index's current settings.
        ef_search: the HNSW index's current beam width.
        holding_lists, holding_entries: IVF only, how many inverted lists hold at least one
            allowed id and how many entries those lists hold in all (default: a filter spread
            over every list, as a random one is).
    """
    cfg = config or PlannerConfig()
    fraction = min(1.0, allowed / max(ntotal, 1))
    if kind == "flat":
        # the flat index is exact either way; a gather of a small set beats scanning all n
        mode = "exact" if allowed <= cfg.exact_max and fraction < 0.5 else "index"
        return FilterPlan(mode, allowed)
    if kind == "ivf":
        return _plan_ivf(ntotal, allowed, nprobe, nlist, cfg, holding_lists, holding_entries)
    if allowed <= cfg.exact_max or fraction < cfg.hnsw_exact_fraction:
        return FilterPlan("exact", allowed)
    ef = max(ef_search, k, math.ceil(ef_search * cfg.hnsw_widen / fraction))
    return FilterPlan("index", allowed, int(min(ef, max(cfg.hnsw_max_ef, k))))


def _plan_ivf(
    ntotal: int,
    allowed: int,
    nprobe: int,
    nlist: int,
    cfg: PlannerConfig,
    holding_lists: int | None,
    holding_entries: int | None,
) -> FilterPlan:
    lists = min(nlist, allowed) if holding_lists is None else holding_lists
    entries = ntotal if holding_entries is None else holding_entries
    if allowed <= cfg.exact_max:
        return FilterPlan("exact", allowed)
    # a filter held by few lists is correlated with the embedding: its nearest allowed ids sit in
    # slivers of many lists at the edge of the region, so probe more of them (sqrt: measured)
    spread = math.sqrt(nlist / max(lists, 1))
    probe = min(lists, max(1, math.ceil(nprobe * cfg.ivf_widen * spread)))
    index_entries = probe * entries / max(lists, 1)  # what the index plan scans, on average
    if probe >= lists or entries <= cfg.lists_factor * index_entries:
        return FilterPlan("lists", allowed, lists)
    if allowed / max(ntotal, 1) < cfg.exact_fraction:  # too narrow for the index plan's recall
        if allowed * cfg.gather_cost <= entries:
            return FilterPlan("exact", allowed)
        return FilterPlan("lists", allowed, lists)
    return FilterPlan("index", allowed, probe)
