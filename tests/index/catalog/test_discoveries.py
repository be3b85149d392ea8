"""The discoveries store (index/catalog/discoveries.py): round trip, runs never edited, same inputs found."""

from __future__ import annotations

import duckdb
import pytest

from index.catalog.catalog import SCHEMA_VERSION, Catalog
from index.catalog.discoveries import (
    ClusterFacts,
    NewCluster,
    find_discovery,
    list_discoveries,
    load_cluster,
    load_discovery,
    record_naming,
    store_discovery,
)
from index.errors import NotFound

PARAMS = {"min_cluster_size": 5, "where": None}


def facts(**kw) -> ClusterFacts:
    return ClusterFacts(nearest_species="Aurelia aurita", nearest_similarity=0.5, frames=2, sites=("1.00,2.00",), **kw)


def clusters():
    return [
        NewCluster(
            3, 0.9, facts(depth_m=(10.0, 20.0)), [(None, "/x/a.png", 0.01, True), (None, "/x/b.png", 0.02, True)]
        ),
        NewCluster(2, 0.8, facts(), [(None, "/x/c.png", 0.03, False)]),
    ]


def test_a_run_reads_back_as_written(tmp_path):
    catalog = Catalog(tmp_path / "catalog.duckdb")
    run = store_discovery(catalog, "m", "gen-0001", "tuned", PARAMS, "abc", 10, 5, clusters())
    got = load_discovery(catalog, run, tmp_path)
    assert (got.model_id, got.generation, got.space, got.params, got.inputs, got.unknown) == (
        "m",
        "gen-0001",
        "tuned",
        PARAMS,
        10,
        5,
    )
    assert [c.number for c in got.clusters] == [1, 2] and [c.size for c in got.clusters] == [3, 2]
    first = got.clusters[0]
    assert first.facts == facts(depth_m=(10.0, 20.0))
    assert [m.path for m in first.members] == ["/x/a.png", "/x/b.png"] and [m.distance for m in first.members] == [
        0.01,
        0.02,
    ]
    assert len(first.exemplars) == 2 and got.clusters[1].exemplars == ()
    assert load_cluster(catalog, first.id, tmp_path) == first
    assert first.to_dict()["members"][0] == {"path": "/x/a.png", "distance": 0.01, "exemplar": True}


def test_cluster_ids_are_unique_across_runs_and_a_new_run_edits_no_old_one(tmp_path):
    catalog = Catalog(tmp_path / "catalog.duckdb")
    one = store_discovery(catalog, "m", "gen-0001", "tuned", PARAMS, "abc", 10, 5, clusters())
    before = load_discovery(catalog, one, tmp_path)
    two = store_discovery(catalog, "m", "gen-0002", "tuned", PARAMS, "def", 10, 5, clusters()[:1])
    assert load_discovery(catalog, one, tmp_path) == before
    ids = [c.id for r in list_discoveries(catalog, tmp_path) for c in r.clusters]
    assert len(ids) == len(set(ids)) == 3
    assert [r.id for r in list_discoveries(catalog, tmp_path)] == [two, one]
    assert list_discoveries(catalog, tmp_path)[0].clusters[0].members == ()  # listed without members


def test_find_matches_only_the_same_inputs(tmp_path):
    catalog = Catalog(tmp_path / "catalog.duckdb")
    assert find_discovery(catalog, "m", "gen-0001", "tuned", PARAMS, "abc") is None
    run = store_discovery(catalog, "m", "gen-0001", "tuned", PARAMS, "abc", 10, 5, clusters())
    assert find_discovery(catalog, "m", "gen-0001", "tuned", dict(reversed(PARAMS.items())), "abc") == run
    for changed in (
        ("m2", "gen-0001", "tuned", PARAMS, "abc"),
        ("m", "gen-0002", "tuned", PARAMS, "abc"),
        ("m", "gen-0001", "fused", PARAMS, "abc"),
        ("m", "gen-0001", "tuned", {**PARAMS, "min_cluster_size": 6}, "abc"),
        ("m", "gen-0001", "tuned", PARAMS, "abd"),
    ):
        assert find_discovery(catalog, *changed) is None, changed


def test_naming_is_appended_beside_the_run(tmp_path):
    catalog = Catalog(tmp_path / "catalog.duckdb")
    run = store_discovery(catalog, "m", "gen-0001", "tuned", PARAMS, "abc", 10, 5, clusters())
    cid = load_discovery(catalog, run, tmp_path).clusters[0].id
    record_naming(catalog, cid, "Aurelia nova", {"answered": [1, 2]})
    got = load_cluster(catalog, cid, tmp_path)
    assert [n.species for n in got.names] == ["Aurelia nova"] and got.names[0].payload == {"answered": [1, 2]}
    assert got.to_dict()["named"] == ["Aurelia nova"]


def test_unknown_ids_are_not_found(tmp_path):
    catalog = Catalog(tmp_path / "catalog.duckdb")
    store_discovery(catalog, "m", None, "tuned", PARAMS, "abc", 0, 0, [])
    with pytest.raises(NotFound, match="no discovery run 99"):
        load_discovery(catalog, 99, tmp_path)
    with pytest.raises(NotFound, match="no discovered cluster 99"):
        load_cluster(catalog, 99, tmp_path)


def test_an_older_catalog_gains_the_tables(tmp_path):
    path = tmp_path / "catalog.duckdb"
    Catalog(path).ensure_schema()
    con = duckdb.connect(str(path))
    for table in ("discovery_names", "discovery_members", "discovery_clusters", "discoveries"):
        con.execute(f"DROP TABLE {table}")
    con.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    con.close()
    assert list_discoveries(Catalog(path), tmp_path) == []  # a read migrates an outdated catalog first
    with Catalog(path).read() as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
