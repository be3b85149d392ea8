"""What the explorer browses: status, species summaries, the embedding map, one status rule."""

from __future__ import annotations

import pytest

from app.workspace import Workspace
from app.workspace.browse import status_of


def test_browse_status_species_and_map(tiny_home, tmp_path):
    ws = Workspace(tiny_home)
    status = ws.status()
    assert status.has_index and status.model_id == "tiny" and status.crops > 0 and not status.message
    infos = {i.name: i for i in ws.species_summary()}
    assert {i.status for i in infos.values()} == {"known", "holdout"}
    known = next(i for i in infos.values() if i.status == "known")
    assert known.examples and known.nearest and len(known.confusable) == 3
    assert all(p.is_file() for p in known.nearest)
    points = ws.embedding_map(max_points=40)
    assert len(points) == 40 and {"x", "y", "species", "status", "split", "crop"} <= set(points[0].to_dict())
    assert "demo" in Workspace(tmp_path / "none").status().message


def test_species_summary_matches_its_oracles(tiny_home):
    """Counts from the catalog, confusable species from the prototypes' cosine matrix."""
    import numpy as np

    ws = Workspace(tiny_home)
    engine = ws.engine()
    per_species = ws.stats().per_species
    protos = engine.prototypes
    for info in ws.species_summary():
        assert info.count == per_species[info.name]
        if info.status != "known":
            assert info.confusable == []
            continue
        mine = protos.vectors[protos.owners == protos.names.index(info.name)]
        sims = {other: float((mine @ protos.rows_of(other).T).max()) for other in protos.names if other != info.name}
        expected = sorted(sims.items(), key=lambda kv: -kv[1])[:3]
        assert [n for n, _ in info.confusable] == [n for n, _ in expected]
        np.testing.assert_allclose([s for _, s in info.confusable], [s for _, s in expected], rtol=1e-5)


def test_map_and_species_page_agree_on_every_status(tiny_ws):
    """The map and the species list use one status rule, also for an added species."""
    with tiny_ws.catalog.read() as con:
        (name,) = con.execute("SELECT concept FROM annotations WHERE split = 'holdout' LIMIT 1").fetchone()
        paths = [
            tiny_ws.home / p
            for (p,) in con.execute("SELECT crop_path FROM annotations WHERE concept = ? LIMIT 3", [name]).fetchall()
        ]
    tiny_ws.species_add(name, paths)
    species = {i.name: i.status for i in tiny_ws.species_summary()}
    assert species[name] == "added"
    on_map = {}
    for p in tiny_ws.embedding_map(max_points=10_000):
        on_map.setdefault(p.species, set()).add(p.status)
    assert all(statuses == {species[n]} for n, statuses in on_map.items())


@pytest.mark.parametrize(
    "origins, held, expected",
    [
        ({"a": "train"}, False, "known"),
        ({"a": "train"}, True, "known"),
        ({"a": "added"}, True, "added"),
        ({}, True, "holdout"),
        ({}, False, "excluded"),
    ],
)
def test_status_of(origins, held, expected):
    assert status_of("a", origins, held) == expected
