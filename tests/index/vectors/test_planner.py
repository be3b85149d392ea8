"""index.vectors.planner: which plan a filtered query gets, from the allowed set's size and, for IVF,
how many inverted lists hold it (the recall behind each rule is in test_filtered_recall.py)."""

from __future__ import annotations

import pytest

from index.vectors.planner import PlannerConfig, plan_filtered

N, NLIST, NPROBE = 1_000_000, 1000, 32


def ivf(allowed: int, lists: int | None = None, entries: int | None = None, **cfg):
    return plan_filtered(
        "ivf",
        N,
        allowed,
        10,
        nprobe=NPROBE,
        nlist=NLIST,
        config=PlannerConfig(**cfg),
        holding_lists=lists,
        holding_entries=entries,
    )


def test_small_sets_are_gathered_exactly():
    assert ivf(2_000).mode == "exact"
    assert plan_filtered("hnsw", N, 2_000, 10, ef_search=64).mode == "exact"
    assert plan_filtered("flat", N, 2_000, 10).mode == "exact"


def test_a_random_filter_probes_twice_nprobe_of_its_lists():
    plan = ivf(100_000, lists=NLIST, entries=N)
    assert (plan.mode, plan.probe) == ("index", 2 * NPROBE)


def test_a_filter_held_by_few_lists_scans_them_all_exactly():
    plan = ivf(100_000, lists=90, entries=110_000)
    assert (plan.mode, plan.probe) == ("lists", 90)


def test_a_correlated_filter_spread_over_many_lists_probes_wider():
    random, correlated = ivf(100_000, lists=NLIST, entries=N), ivf(100_000, lists=400, entries=450_000)
    assert correlated.mode == "index" and correlated.probe > random.probe


@pytest.mark.parametrize("allowed, entries, mode", [(5_000, N, "exact"), (9_999, 200_000, "lists")])
def test_below_exact_fraction_the_cheaper_exact_plan_wins(allowed, entries, mode):
    """Under 1% of the collection the index plan's recall is below the bar, so the answer is
    exact: gathered when that is cheaper than scanning the lists that hold the set."""
    lists = NLIST if entries == N else 300
    assert ivf(allowed, lists=lists, entries=entries, lists_factor=0.0).mode == mode


def test_hnsw_walks_only_filters_allowing_half_the_collection():
    assert plan_filtered("hnsw", N, N // 2 - 1, 10, ef_search=64).mode == "exact"
    walk = plan_filtered("hnsw", N, N // 2, 10, ef_search=64)
    assert walk.mode == "index" and walk.probe == 2048
