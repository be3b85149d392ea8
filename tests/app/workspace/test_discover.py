"""Discover on the synthetic reef (app/workspace/discover.py): clusters recover held-out species, runs are
deterministic and stored, naming a cluster goes through species add and keeps its invariants.

The shared tiny model (tests/conftest.py, two epochs) separates the held-out species poorly from the
known ones: its stored decision answers only a handful of crops unknown. :func:`answering_all_unknown`
stores a decision whose deciding threshold no score reaches, i.e. a model that answers every crop
unknown, so discovery clusters every held-out crop; naming then runs under the real decision again.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from app.workspace import Workspace
from index.catalog.decisions import load_decision, store_decision
from index.catalog.embeddings import group_keys, load_embeddings
from index.catalog.lookup import crop_species
from index.errors import FilterError, InvalidInput, NotFound
from index.records import HOLDOUT
from index.scoring.clustering import ClusterParams
from index.scoring.fusion import SPACES

pytest.importorskip("sklearn")

PARAMS = ClusterParams(min_cluster_size=3)


def answering_all_unknown(ws: Workspace):
    """Store a decision under which every crop is answered unknown; returns the real one (to restore)."""
    real = load_decision(ws.catalog, "tiny")
    store_decision(ws.catalog, replace(real, thresholds={**real.thresholds, real.scorer: 2.0}))
    return real


def discover_held_out(home) -> tuple[Workspace, object]:
    """Discover among the held-out crops of ``home`` under the all-unknown decision, then restore the real one."""
    ws = Workspace(home)
    real = answering_all_unknown(ws)
    run = ws.discovery().run(where=f"split={HOLDOUT}", params=PARAMS)
    store_decision(ws.catalog, real)
    return Workspace(home), run


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    """Share of clustered crops that belong to their cluster's majority species."""
    return sum(Counter(truth[labels == c].tolist()).most_common(1)[0][1] for c in np.unique(labels)) / len(labels)


def test_clusters_recover_the_held_out_species_where_random_labels_cannot(tiny_ws):
    ws, run = discover_held_out(tiny_ws.home)
    held = {c for c in crop_species(ws.catalog, load_embeddings(ws.catalog, "tiny", (HOLDOUT,))[0]).values()}
    assert run.unknown == run.inputs == 49 and len(held) == 2
    ids = np.asarray([m.crop_id for c in run.clusters for m in c.members])
    labels = np.asarray([c.number for c in run.clusters for _ in c.members])
    names = crop_species(ws.catalog, ids.tolist())
    truth = np.asarray([names[int(i)] for i in ids], dtype=object)
    assert len(run.clusters) >= 2 and len(ids) >= 0.5 * run.unknown  # coverage
    majorities = {Counter(truth[labels == c].tolist()).most_common(1)[0][0] for c in np.unique(labels)}
    assert majorities == held  # every held-out species leads a cluster of its own
    got = purity(labels, truth)
    rng = np.random.default_rng(0)
    chance = [purity(rng.permutation(labels), truth) for _ in range(300)]
    assert got >= 0.85 and got > np.quantile(chance, 0.99), (got, np.quantile(chance, 0.99))


def test_members_come_nearest_first_with_exemplars_and_facts(tiny_ws):
    _, run = discover_held_out(tiny_ws.home)
    assert len(run.clusters) >= 2  # the checks below run on every cluster: none would pass vacuously
    for cluster in run.clusters:
        distances = [m.distance for m in cluster.members]
        assert distances == sorted(distances) and len(cluster.members) == cluster.size
        assert len(cluster.exemplars) == min(PARAMS.exemplars, cluster.size)
        groups = group_keys(tiny_ws.catalog, np.asarray([m.crop_id for m in cluster.members]))
        exemplar_groups = [g for g, m in zip(groups, cluster.members, strict=True) if m.exemplar]
        assert len(set(exemplar_groups)) == min(len(set(groups)), len(exemplar_groups))  # distinct groups first
        assert all(m.path and m.path.endswith(".png") for m in cluster.members)
        assert cluster.facts.nearest_species in tiny_ws.engine().prototypes.names
        with tiny_ws.catalog.read() as con:  # frames = the distinct images its crops were cut from
            images = con.execute(
                "SELECT count(DISTINCT image_id) FROM annotations WHERE annotation_id IN (SELECT unnest(?))",
                [[m.crop_id for m in cluster.members]],
            ).fetchone()[0]
        assert cluster.facts.frames == images and cluster.facts.sources == ("synthetic",)
        assert 0 < cluster.cohesion <= 1


def test_the_same_inputs_give_the_same_clusters_and_a_new_run_edits_no_old_one(tiny_ws, tiny_home, tmp_path):
    ws, first = discover_held_out(tiny_ws.home)
    again = discover_held_out(tiny_ws.home)[1]
    assert again.reused and again.id == first.id and again.clusters == first.clusters
    shutil.copytree(tiny_home, tmp_path / "other")  # another catalog: clustered afresh, not read back
    fresh = discover_held_out(tmp_path / "other")[1]
    assert not fresh.reused
    members = lambda r: [[(m.crop_id, m.distance) for m in c.members] for c in r.clusters]
    assert members(fresh) == members(first)
    other = ws.discovery().run(where=f"split={HOLDOUT}", params=ClusterParams(min_cluster_size=4))
    assert other.id != first.id and ws.discovery().show(first.id) == first


def test_by_default_the_crops_the_model_answers_unknown_are_clustered(tiny_ws):
    run = tiny_ws.discovery().run(params=PARAMS)
    ids, vectors = load_embeddings(tiny_ws.catalog, "tiny", ("test", "holdout"))  # never train / val / support
    files = tiny_ws.crop_files(ids.tolist())
    answers = tiny_ws.identify(files, k=1, vectors=vectors)  # the stored vectors: a crop at the threshold stays
    unknown = {int(i) for i, a in zip(ids, answers, strict=True) if a.to_dict()["unknown"]}
    assert run.inputs == len(ids) == 70 and run.unknown == len(unknown) > 0
    assert {m.crop_id for c in run.clusters for m in c.members} <= unknown


def test_naming_a_cluster_changes_only_the_answers_the_new_species_wins(tiny_ws):
    ws, run = discover_held_out(tiny_ws.home)
    cluster = run.clusters[0]
    truth = crop_species(ws.catalog, [m.crop_id for m in cluster.members])
    name = Counter(truth.values()).most_common(1)[0][0]
    ids, vectors = load_embeddings(ws.catalog, "tiny")
    before = ws.engine().verdicts(vectors).species
    named = ws.discovery().name(cluster.id, name, exemplars=3)
    engine = ws.engine()
    assert name in engine.prototypes.names and engine.origins[name] == "added"
    after = engine.verdicts(vectors).species
    changed = before != after
    assert changed.any()
    assert set(after[changed]) == {name}  # a known crop's answer changes only to the new species
    nearest = np.asarray(engine.prototypes.names, dtype=object)[engine.prototypes.similarities(vectors).argmax(1)]
    assert (nearest[changed] == name).all()  # ... and only where it wins
    members = {m.crop_id for m in cluster.members}
    assert set(named.answered) == {int(i) for i, s in zip(ids, after, strict=True) if s == name and int(i) in members}
    assert named.change.examples == 3 and len(named.examples) == 3
    stored = ws.discovery().cluster(cluster.id)
    assert [n.species for n in stored.names] == [name] and stored.members == cluster.members


def test_naming_from_the_crops_the_user_confirms(tiny_ws):
    ws, run = discover_held_out(tiny_ws.home)
    cluster = run.clusters[0]
    keep = [m.crop_id for m in cluster.members[1:3]]
    named = ws.discovery().name(cluster.id, "Confirmus duo", crops=keep)
    assert named.change.examples == 2
    assert ws.discovery().cluster(cluster.id).names[0].payload["examples"] == keep


@pytest.mark.parametrize(
    "kwargs,error,words",
    [
        ({"crops": []}, InvalidInput, "no crops selected"),
        ({"crops": [" "]}, InvalidInput, "no crops selected"),
        ({"crops": ["999999"]}, InvalidInput, "not a member"),
        ({"crops": ["1"], "exemplars": 2}, InvalidInput, "not both"),
    ],
)
def test_bad_selections_are_refused_before_any_change(kwargs, error, words, tiny_ws):
    ws, run = discover_held_out(tiny_ws.home)
    generation = ws.engine().generation
    with pytest.raises(error, match=words):
        ws.discovery().name(run.clusters[0].id, "Nullus nihil", **kwargs)
    assert ws.engine().generation == generation and "Nullus nihil" not in ws.engine().prototypes.names


def test_unknown_ids_spaces_and_filters_are_one_error_each(tiny_ws):
    d = tiny_ws.discovery()
    with pytest.raises(NotFound):
        d.cluster(12345)
    with pytest.raises(NotFound):
        d.show(12345)
    with pytest.raises(InvalidInput, match="one vector space"):
        d.run(space="general")
    with pytest.raises(InvalidInput, match="unknown space"):
        d.run(space="nowhere")
    with pytest.raises(FilterError):
        d.run(where="speciez=x")


def test_discover_in_new_images(tiny_ws, tmp_path):
    ws = tiny_ws
    real = answering_all_unknown(ws)
    ids, _ = load_embeddings(ws.catalog, "tiny", (HOLDOUT,))
    folder = tmp_path / "dive"
    folder.mkdir()
    for n, path in enumerate(ws.crop_files(ids.tolist())):
        shutil.copy(path, folder / f"{n:03d}.png")
    run = Workspace(ws.home).discovery().run(images=sorted(folder.iterdir()), params=PARAMS)
    store_decision(ws.catalog, real)
    assert run.inputs == run.unknown == len(ids) and run.clusters
    member = run.clusters[0].members[0]
    assert member.crop_id is None and member.path.startswith(str(folder))
    assert "crop_id" not in member.to_dict()
    named = Workspace(ws.home).discovery().name(run.clusters[0].id, "Imaginis nova", exemplars=2)
    assert named.change.examples == 2 and all(isinstance(a, str) for a in named.answered)


def test_a_cluster_is_placed_at_the_rank_the_held_out_evidence_supports(tiny_ws):
    """With stored evidence that family claims hold (and genus claims do not), members are placed at a
    family and the cluster names the family most of them are placed at; without evidence, no taxon."""
    from index.metrics.unknown_ranks import PLACEABLE, UnknownRanks

    _, plain = discover_held_out(tiny_ws.home)
    assert all(c.facts.taxon is None and c.facts.genus is None for c in plain.clusters)  # no evidence stored
    real = load_decision(tiny_ws.catalog, "tiny")
    right = {r: ((0.1,) if r == "genus" else (0.9,)) for r in PLACEABLE}
    counts = {r: (10,) for r in PLACEABLE}
    evidence = UnknownRanks((-1.0, 1.0), right, counts, {r: (2,) for r in PLACEABLE}, 10, 2)
    store_decision(tiny_ws.catalog, replace(real, unknown_ranks=evidence))
    _, run = discover_held_out(tiny_ws.home)
    families = {ws_line.at("family") for ws_line in Workspace(tiny_ws.home)._tree().values()} - {None}
    for cluster in run.clusters:
        f = cluster.facts
        assert f.taxon_rank == "family" and f.taxon == f.family and f.taxon in families
        assert f.genus is None and 0 < f.taxon_share <= 1


@pytest.fixture
def two_ws(tiny_ws):
    """The tiny workspace with a general space (a tiny frozen encoder), as tests/app/workspace/test_two_spaces.py."""
    from embedder.general import GeneralConfig, write_general_model

    write_general_model(tiny_ws.paths.model("tiny.general"), GeneralConfig("tiny", "none", 32))
    tiny_ws.embed("tiny", device="cpu")
    tiny_ws.index_build("tiny")
    return tiny_ws


def test_a_home_with_two_spaces_discovers_in_the_space_asked_and_names_in_both(two_ws):
    ws = Workspace(two_ws.home)
    real = answering_all_unknown(ws)
    runs = {s: Workspace(ws.home).discovery().run(where=f"split={HOLDOUT}", params=PARAMS, space=s) for s in SPACES}
    default = Workspace(ws.home).discovery().run(where=f"split={HOLDOUT}", params=PARAMS)
    store_decision(ws.catalog, real)
    assert default.space == "fused" and default.id == runs["fused"].id  # the default where a model has two spaces
    assert {r.space for r in runs.values()} == set(SPACES) and len({r.id for r in runs.values()}) == 3
    assert len({r.input_digest for r in runs.values()}) == 3  # each space clusters its own vectors
    assert all(r.unknown == 49 and r.clusters for r in runs.values())
    cluster = runs["fused"].clusters[0]
    named = Workspace(ws.home).discovery().name(cluster.id, "Fusus novus", exemplars=3)
    spaces = Workspace(ws.home).spaces()
    assert "Fusus novus" in spaces.tuned.prototypes.names and "Fusus novus" in spaces.general.prototypes.names
    assert set(named.answered) <= {m.crop_id for m in cluster.members}
