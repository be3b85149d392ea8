"""Issue 17: lineages, taxonomic distance (FathomNet 2025, 7 ranks, 0..12) and answers at rank,
checked on hand-made trees whose answers are counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from index.taxonomy import MAX_DISTANCE, decode, distance, lineages, rank_table

#: (concept, rank, parent): a hand-made tree. Two butterflyfish genera under one family, a
#: subfamily between genus and family (not a standard rank), a ray-finned fish whose tree has no
#: class, a label at genus level, and a jellyfish in another phylum.
ROWS = [
    ("Animalia", "kingdom", None),
    ("Chordata", "phylum", "Animalia"),
    ("Cnidaria", "phylum", "Animalia"),
    ("Actinopteri", "class", "Chordata"),
    ("Perciformes", "order", "Actinopteri"),
    ("Chaetodontidae", "family", "Perciformes"),
    ("Chaetodontinae", "subfamily", "Chaetodontidae"),
    ("Chaetodon", "genus", "Chaetodontinae"),
    ("Heniochus", "genus", "Chaetodontinae"),
    ("Chaetodon lunulatus", "species", "Chaetodon"),
    ("Chaetodon trifascialis", "species", "Chaetodon"),
    ("Heniochus acuminatus", "species", "Heniochus"),
    ("Pomacentridae", "family", "Perciformes"),
    ("Chromis", "genus", "Pomacentridae"),
    ("Chromis chrysura", "species", "Chromis"),
    ("Kurtiformes", "order", "Chordata"),  # no class in this tree: the rank is empty, the taxon kept
    ("Kurtidae", "family", "Kurtiformes"),
    ("Kurtus", "genus", "Kurtidae"),
    ("Kurtus gulliveri", "species", "Kurtus"),
    ("Scyphozoa", "class", "Cnidaria"),
    ("Semaeostomeae", "order", "Scyphozoa"),
    ("Ulmaridae", "family", "Semaeostomeae"),
    ("Aurelia", "genus", "Ulmaridae"),
    ("Aurelia aurita", "species", "Aurelia"),
    ("Plantae", "kingdom", None),
    ("Chlorophyta", "phylum", "Plantae"),
    ("Ulva", "genus", "Chlorophyta"),
]
TREE = lineages(ROWS)


def test_a_lineage_keeps_a_subfamily_and_an_empty_rank_drops_nothing():
    line = TREE["Chaetodon lunulatus"]
    assert line.rank == "species"
    assert line.as_dict() == {
        "kingdom": "Animalia",
        "phylum": "Chordata",
        "class": "Actinopteri",
        "order": "Perciformes",
        "family": "Chaetodontidae",
        "subfamily": "Chaetodontinae",
        "genus": "Chaetodon",
        "species": "Chaetodon lunulatus",
    }
    kurtus = TREE["Kurtus gulliveri"].as_dict()
    assert "class" not in kurtus and kurtus["order"] == "Kurtiformes" and kurtus["phylum"] == "Chordata"


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ("Chaetodon lunulatus", "Chaetodon lunulatus", 0),
        ("Chaetodon lunulatus", "Chaetodon trifascialis", 2),  # siblings: up to the genus and down
        ("Chaetodon lunulatus", "Chaetodon", 1),  # a label at genus level is one edge from its species
        ("Chaetodon lunulatus", "Heniochus acuminatus", 4),  # the subfamily they share is not a rank
        ("Chaetodon lunulatus", "Chromis chrysura", 6),  # common order: 3 + 3
        ("Chaetodon", "Chromis chrysura", 5),  # genus (depth 5) vs species (depth 6) under one order
        ("Chaetodon lunulatus", "Kurtus gulliveri", 10),  # common phylum (depth 1): 5 + 5, class empty
        ("Chaetodon lunulatus", "Aurelia aurita", 12),  # common kingdom only (depth 0): 6 + 6
        ("Chaetodon lunulatus", "Ulva", MAX_DISTANCE),  # another kingdom
    ],
)
def test_distance_on_a_hand_made_tree(a, b, expected):
    assert distance(TREE[a], TREE[b]) == expected
    assert distance(TREE[b], TREE[a]) == expected  # symmetric


def test_distance_is_the_maximum_without_any_shared_rank():
    from index.taxonomy import Lineage

    assert distance(Lineage("mystery", None), TREE["Chaetodon lunulatus"]) == MAX_DISTANCE == 12


CLASSES = ("Chaetodon lunulatus", "Chaetodon trifascialis", "Chromis chrysura", "Chaetodon")  # the last at genus


def test_probabilities_sum_up_the_tree_including_labels_at_genus_level():
    table = rank_table(CLASSES, TREE)
    p = np.array([[0.3, 0.25, 0.3, 0.15]])
    taxon = dict(zip(table.taxa, table.probabilities(p)[0], strict=False))
    assert taxon["Chaetodon"] == pytest.approx(0.3 + 0.25 + 0.15)  # its species and the genus-level label
    assert taxon["Chaetodontidae"] == pytest.approx(0.7)
    assert taxon["Perciformes"] == pytest.approx(1.0) and taxon["Animalia"] == pytest.approx(1.0)
    assert taxon["Chromis"] == pytest.approx(0.3)


def test_probable_decoding_names_the_deepest_confident_rank():
    table = rank_table(CLASSES, TREE)
    confident, uncertain = decode(table, np.array([[0.9, 0.05, 0.05, 0.0], [0.3, 0.25, 0.3, 0.15]]), 0.5)
    assert (confident.name, confident.rank) == ("Chaetodon lunulatus", "species")
    assert (uncertain.name, uncertain.rank) == ("Chaetodon", "genus")  # 0.7: "genus Chaetodon, species uncertain"
    assert uncertain.probability == pytest.approx(0.7)
    assert uncertain.lineage["family"] == "Chaetodontidae"


def test_an_unknown_crop_is_placed_above_the_species_rank():
    table = rank_table(CLASSES, TREE)
    (answer,) = decode(table, np.array([[0.9, 0.05, 0.05, 0.0]]), 0.5, unknown=np.array([True]))
    assert answer.name not in CLASSES and answer.rank in ("family", "subfamily", "order")
    assert answer.name in ("Chaetodontidae", "Chaetodontinae")  # the deepest non-class taxon over 0.5


def test_distance_decoding_minimises_the_expected_distance():
    table = rank_table(CLASSES, TREE)
    p = np.array([[0.3, 0.25, 0.3, 0.15]])
    (answer,) = decode(table, p, 0.5, method="distance")
    cls = [TREE[c] for c in CLASSES]
    by_hand = {t: sum(pc * distance(c, TREE[t]) for pc, c in zip(p[0], cls, strict=False)) for t in table.taxa}
    assert answer.expected_distance == pytest.approx(min(by_hand.values()))
    assert by_hand[answer.name] == pytest.approx(min(by_hand.values()))


def test_an_unknown_decoding_is_refused():
    with pytest.raises(ValueError, match="decode must be one of"):
        decode(rank_table(CLASSES, TREE), np.array([[1.0, 0, 0, 0]]), 0.5, method="likeliest")
