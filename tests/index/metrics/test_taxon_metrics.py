"""Issue 17: rank accuracy, mean taxonomic distance, held-out placement and the rank threshold's
choice, on a hand-made tree whose answers are counted by hand (index.metrics.ranks)."""

from __future__ import annotations

import numpy as np
import pytest

from index.metrics.ranks import (
    answer_distances,
    answer_lineage,
    choose_rank_threshold,
    placed,
    rank_accuracy,
    tree_digest,
)
from index.taxonomy import RANK_THRESHOLD, TaxonAnswer, lineages, rank_table

#: A subfamily between genus and family, a fish whose tree has no class (Kurtus), and a label at
#: genus level with no family (Ulva).
ROWS = [
    ("Animalia", "kingdom", None),
    ("Chordata", "phylum", "Animalia"),
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
    ("Kurtiformes", "order", "Chordata"),
    ("Kurtidae", "family", "Kurtiformes"),
    ("Kurtus", "genus", "Kurtidae"),
    ("Kurtus gulliveri", "species", "Kurtus"),
    ("Plantae", "kingdom", None),
    ("Chlorophyta", "phylum", "Plantae"),
    ("Ulva", "genus", "Chlorophyta"),
]
TREE = lineages(ROWS)
CL, CT, CC, KG = "Chaetodon lunulatus", "Chaetodon trifascialis", "Chromis chrysura", "Kurtus gulliveri"


def answer(name: str | None) -> TaxonAnswer:
    if name is None:
        return TaxonAnswer(None, None, 0.0)
    line = TREE[name]
    return TaxonAnswer(name, line.rank, 1.0, line.as_dict())


def test_mean_distance_counts_edges_over_the_seven_ranks_and_nothing_named_as_twelve():
    truth = [TREE[c] for c in (CL, CL, CC, KG, CL)]
    answers = [answer(a) for a in (CL, "Chaetodon", CT, None, "Heniochus acuminatus")]
    # 0 right; 1 genus-level answer; 6 = up to Perciformes (3 edges) and down (3); 12 nothing named;
    # 4: the subfamily both lie in is not one of the 7 ranks, so the common ancestor is the family.
    assert answer_distances(truth, answers).tolist() == [0, 1, 6, 12, 4]
    assert answer_distances(truth, answers).mean() == pytest.approx(23 / 5)


def test_rank_accuracy_skips_ranks_a_truth_lacks_and_fails_answers_above_the_rank():
    truth = [TREE[c] for c in (CL, CL, CC, KG)]
    predicted = [answer_lineage(answer(a)) for a in (CL, "Chaetodon", CT, None)]
    acc = rank_accuracy(truth, predicted)
    assert acc["kingdom"] == pytest.approx(3 / 4)  # nothing named is wrong at every rank
    assert acc["class"] == pytest.approx(3 / 3)  # Kurtus has no class: not counted there
    assert acc["order"] == pytest.approx(3 / 4)
    assert acc["family"] == pytest.approx(2 / 4)  # the genus answer names the family too
    assert acc["genus"] == pytest.approx(2 / 4)
    assert acc["species"] == pytest.approx(1 / 4)  # a genus answer does not name the species


def test_rank_accuracy_is_none_for_a_rank_no_truth_names():
    acc = rank_accuracy([TREE["Ulva"]], [answer_lineage(answer("Ulva"))])
    assert acc["genus"] == 1.0 and acc["family"] is None and acc["species"] is None


def test_held_out_placement_needs_the_new_flag_and_the_right_taxon():
    truth = [TREE[c] for c in (CL, CL, CL, CC, "Ulva")]
    answers = [answer(a) for a in ("Chaetodon", "Chaetodontidae", "Chaetodon", "Pomacentridae", "Ulva")]
    flagged = np.array([True, True, False, True, True])  # the third is named a known species: not placed
    assert placed(truth, answers, flagged, "genus") == (2, 5)  # Chaetodon once (flagged), Ulva
    assert placed(truth, answers, flagged, "family") == (3, 4)  # Ulva has no family: not counted


def _table():
    return rank_table([CL, CT, CC], TREE)


def test_the_rank_threshold_is_the_grid_value_of_least_mean_distance_on_validation():
    # A (truth CL): species 0.62 -> right species up to t = 0.62, genus (0.90) to 0.90, then the order.
    # B (truth CT, wrongly most like CL): CL below 0.40 (2), genus Chaetodon to 0.75 (1), then the order (3).
    probs = np.array([[0.62, 0.28, 0.10], [0.40, 0.35, 0.25]])
    known = (probs, np.array([CL, CT]), np.zeros(2, dtype=bool))
    choice = choose_rank_threshold(_table(), TREE, known)
    assert choice.grid["0.30"] == pytest.approx(1.0) and choice.grid["0.50"] == pytest.approx(0.5)
    assert choice.grid["0.85"] == pytest.approx(2.0) and choice.grid["0.95"] == pytest.approx(3.0)
    assert choice.threshold == pytest.approx(0.60)  # 0.45 .. 0.60 tie at 0.5: the highest wins
    assert choice.source == "validation" and choice.n_known == 2 and choice.n_unknown == 0


@pytest.mark.parametrize(
    "probs, labels, grid, winner",
    [
        # CL named at every threshold (its probability is 1): distance 0 everywhere, a tie across the whole
        # grid: the highest threshold wins, not the first one tried
        ([[1.0, 0.0, 0.0]], [CL], (0.30, 0.50, 0.70, 0.90), 0.90),
        # the two crops of the test above on a coarse grid: 0.30 -> (0 + 2) / 2 = 1.0 (B named CL), 0.50 -> (0 + 1)
        # / 2 = 0.5 (B at genus), 0.70 -> (1 + 1) / 2 = 1.0 (A at genus too): the strict least, 0.50, wins over
        # the higher 0.70 that only ties the lower 0.30
        ([[0.62, 0.28, 0.10], [0.40, 0.35, 0.25]], [CL, CT], (0.30, 0.50, 0.70), 0.50),
        # one B crop alone: 2 (named CL) at 0.30, 1 (genus) at 0.50 and 0.70, 3 (the order) at 0.80: of the two
        # tied at 1, the higher, 0.70
        ([[0.40, 0.35, 0.25]], [CT], (0.30, 0.50, 0.70, 0.80), 0.70),
    ],
)
def test_the_rank_threshold_tie_break_on_hand_made_cases(probs, labels, grid, winner):
    known = (np.array(probs), np.array(labels), np.zeros(len(labels), dtype=bool))
    assert choose_rank_threshold(_table(), TREE, known, grid=grid).threshold == pytest.approx(winner)


def test_held_out_validation_crops_weigh_as_much_as_the_known_ones():
    probs = np.array([[0.62, 0.28, 0.10], [0.40, 0.35, 0.25]])
    known = (probs, np.array([CL, CT]), np.zeros(2, dtype=bool))
    # flagged new: the classes are excluded, so genus Chaetodon (0.8) up to 0.80 (1), then the order (3)
    held = (np.array([[0.5, 0.3, 0.2]]), np.array(["Heniochus acuminatus"]), np.array([True]))
    truth = dict(TREE)
    choice = choose_rank_threshold(_table(), truth, known, held)
    # Heniochus acuminatus -> genus Chaetodon: up to the family (2) and down (1) = 3; -> the order: 3
    assert choice.grid["0.60"] == pytest.approx((0.5 + 3) / 2)
    assert choice.n_unknown == 1 and choice.threshold == pytest.approx(0.60)


def test_without_validation_crops_the_default_is_kept_and_said():
    empty = (np.zeros((0, 3)), np.array([], dtype=str), np.zeros(0, dtype=bool))
    choice = choose_rank_threshold(_table(), TREE, empty)
    assert choice.threshold == RANK_THRESHOLD and choice.source == "default" and choice.grid == {}


def test_the_tree_digest_changes_when_a_lineage_does():
    other = lineages([r if r[0] != "Chromis" else ("Chromis", "genus", "Chaetodontidae") for r in ROWS])
    assert tree_digest(list(TREE.values())) == tree_digest(list(lineages(ROWS).values()))
    assert tree_digest(list(TREE.values())) != tree_digest(list(other.values()))


def test_a_genus_no_trained_species_is_in_is_not_counted():
    truth = [TREE["Heniochus acuminatus"], TREE[CL]]
    answers = [answer("Chaetodontidae"), answer("Chaetodon")]
    known = set(_table().taxa)  # trained: two Chaetodon and a Chromis; no Heniochus
    assert placed(truth, answers, np.array([True, True]), "genus", known) == (1, 1)
    assert placed(truth, answers, np.array([True, True]), "family", known) == (2, 2)
