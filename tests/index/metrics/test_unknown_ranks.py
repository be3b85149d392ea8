"""Placing a crop judged unknown (issue 30 item 5): a rank only where held-out species bore it out.

A hand-built tree: known species A1, A2 (genus Ga, family Fa, phylum P1) and B1 (genus Gb,
family Fb, phylum P2). Held-out species: X (genus Gx, family Fa, phylum P1: its crops look like A1)
and Y (genus Gy, family Fy, phylum P1: its crops look like B1, the wrong phylum). Wrong code that
fails here: placing an unknown crop by the summed known-species probabilities (genus Ga at 1.00,
the old decoding), naming a rank whose claims were right on only one held-out species (the prior
of one wrong species keeps it at 0.5, not above), reporting the summed probability instead of
the measured share, a walk that skips a failed rank and names a deeper one.
"""

from __future__ import annotations

import numpy as np
import pytest

from index.metrics.unknown_ranks import UnknownRanks, answer_taxa, fit_unknown_ranks, place_unknown
from index.taxonomy import TaxonAnswer, decode, lineages, rank_table

ROWS = [
    ("Animalia", "kingdom", None),
    ("P1", "phylum", "Animalia"),
    ("P2", "phylum", "Animalia"),
    ("Fa", "family", "P1"),
    ("Fb", "family", "P2"),
    ("Fy", "family", "P1"),
    ("Ga", "genus", "Fa"),
    ("Gb", "genus", "Fb"),
    ("Gx", "genus", "Fa"),
    ("Gy", "genus", "Fy"),
    ("A1", "species", "Ga"),
    ("A2", "species", "Ga"),
    ("B1", "species", "Gb"),
    ("X", "species", "Gx"),
    ("Y", "species", "Gy"),
]
TREE = lineages(ROWS)
CLASSES = ("A1", "A2", "B1")
LIKE_A1 = [0.9, 0.1, 0.0]  # summed: genus Ga 1.0, family Fa 1.0, phylum P1 1.0
LIKE_B1 = [0.0, 0.0, 1.0]  # genus Gb, family Fb, phylum P2, all at 1.0
NEAR_A1, FAR_A1, NEAR_B1 = [0.8, 0.6, 0.1], [0.3, 0.2, 0.1], [0.1, 0.1, 0.8]  # cosines to A1, A2, B1


def rows(*groups):
    """(probs, sims, labels) of ``(n, probs row, cosines row, label)`` groups."""
    probs = np.asarray([p for n, p, _, _ in groups for _ in range(n)], dtype=np.float64)
    sims = np.asarray([c for n, _, c, _ in groups for _ in range(n)], dtype=np.float64)
    return probs, sims, [lab for n, _, _, lab in groups for _ in range(n)]


@pytest.fixture
def table():
    return rank_table(CLASSES, TREE)


def measured(table, n_x=6, n_y=4):
    probs, sims, labels = rows((n_x, LIKE_A1, NEAR_A1, "X"), (n_y, LIKE_B1, NEAR_B1, "Y"))
    return fit_unknown_ranks(table, probs, sims, labels, {n: TREE[n] for n in ("X", "Y")})


def test_the_measured_share_is_per_held_out_species_with_one_wrong_species_as_prior(table):
    m = measured(table)
    top = len(m.edges) - 2  # the bin of summed probability 1.0
    # kingdom: both species right -> 2 / 3; phylum: X right (P1), Y wrong (P2 claimed) -> 1 / 3;
    # family: X right (Fa), Y wrong -> 1 / 3; genus: both wrong (Ga, Gb) -> 0
    assert m.right["kingdom"][top] == pytest.approx(2 / 3)
    assert m.right["phylum"][top] == pytest.approx(1 / 3)
    assert m.right["family"][top] == pytest.approx(1 / 3)
    assert m.right["genus"][top] == 0.0
    assert m.species["genus"][top] == 2 and m.crops["genus"][top] == 10
    assert m.right["genus"][0] is None  # every crop's cosine is 0.8, the median: none in the lower bin
    assert m.n_crops == 10 and m.n_species == 2


def test_an_unknown_crop_is_placed_only_where_the_claim_held_up(table):
    answers = place_unknown(table, np.asarray([LIKE_A1]), np.asarray([NEAR_A1]), measured(table))
    assert (answers[0].name, answers[0].rank) == ("Animalia", "kingdom")  # not "genus Ga"
    assert answers[0].probability == pytest.approx(2 / 3)  # the measured share, not the summed 1.0
    assert answers[0].basis == "held-out species"
    # the old answer: the deepest taxon above the classes by the known-species probabilities
    old = decode(table, np.asarray([LIKE_A1]), 0.5, unknown=np.asarray([True]))[0]
    assert (old.name, old.rank, old.probability) == ("Ga", "genus", 1.0)


def test_a_rank_that_held_up_on_enough_species_is_named(table):
    probs, sims, labels = rows((3, LIKE_A1, NEAR_A1, "X"), (3, LIKE_A1, NEAR_A1, "X2"), (3, LIKE_A1, NEAR_A1, "X3"))
    tree = lineages(
        ROWS + [("Gx2", "genus", "Fa"), ("X2", "species", "Gx2"), ("Gx3", "genus", "Fa"), ("X3", "species", "Gx3")]
    )  # three held-out species of family Fa, new genera
    m = fit_unknown_ranks(table, probs, sims, labels, {n: tree[n] for n in set(labels)})
    answer = place_unknown(table, np.asarray([LIKE_A1]), np.asarray([NEAR_A1]), m)[0]
    assert (answer.name, answer.rank) == ("Fa", "family")  # family right for all three: 3 / 4
    assert answer.probability == pytest.approx(3 / 4)
    assert answer.lineage == {"kingdom": "Animalia", "phylum": "P1", "family": "Fa"}


def test_the_evidence_separates_close_crops_from_far_ones(table):
    """Two held-out species close to A1 share its family; one far from everything (its nearest
    still A1) does not: a close crop is placed at the family (2 right of 2, with the prior 2 / 3),
    a far one is not. Pooled over the evidence (2 right of 3 species: 2 / 4) neither would be."""
    probs, sims, labels = rows((4, LIKE_A1, NEAR_A1, "X"), (4, LIKE_A1, NEAR_A1, "X2"), (8, LIKE_A1, FAR_A1, "Y"))
    tree = lineages(ROWS + [("Gx2", "genus", "Fa"), ("X2", "species", "Gx2")])
    m = fit_unknown_ranks(table, probs, sims, labels, {n: tree[n] for n in set(labels)})
    close, far = place_unknown(table, np.asarray([LIKE_A1, LIKE_A1]), np.asarray([NEAR_A1, FAR_A1]), m)
    assert (close.name, close.rank, close.probability) == ("Fa", "family", pytest.approx(2 / 3))
    assert far.name is None  # the far bin holds Y alone: right at kingdom, but one species is 1 / 2


def test_one_lucky_species_is_not_enough_and_no_evidence_names_nothing(table):
    probs, sims, labels = rows((5, LIKE_A1, NEAR_A1, "X"))
    m = fit_unknown_ranks(table, probs, sims, labels, {"X": TREE["X"]})
    assert m.right["family"][-1] == pytest.approx(0.5)  # right on its only species: 1 / 2, not > 0.5
    assert place_unknown(table, np.asarray([LIKE_A1]), np.asarray([NEAR_A1]), m)[0].name is None
    assert place_unknown(table, np.asarray([LIKE_A1]), np.asarray([NEAR_A1]), UnknownRanks.empty())[0].name is None


def test_known_rows_keep_their_decoding_and_the_dict_round_trips(table):
    probs = np.asarray([LIKE_A1, LIKE_B1])
    base = decode(table, probs, 0.5)
    out = answer_taxa(table, probs, np.asarray([NEAR_A1, NEAR_B1]), base, np.asarray([False, True]), None)
    assert out[0] == base[0] and out[1] == TaxonAnswer(None, None, 0.0, {}, basis="held-out species")
    m = measured(table)
    assert UnknownRanks.from_dict(m.to_dict()) == m


def test_evaluate_grades_unknown_crops_as_identify_answers_them(table):
    """``oceanid evaluate``'s held-out placement uses the same rule: without held-out evidence a
    flagged crop is placed nowhere (f856aba graded the known-species decoding: family Fa, genus Ga)."""
    from app.workspace.taxon_evaluation import taxonomy_figures

    known = (np.asarray([LIKE_A1]), np.asarray(["A1"]), np.asarray([False]))
    tree = lineages(ROWS + [("Gx2", "genus", "Fa"), ("X2", "species", "Gx2")])
    held = (np.asarray([LIKE_A1] * 2), np.asarray(["X", "X2"]), np.asarray([True, True]))
    cosines = (np.asarray([NEAR_A1]), np.asarray([NEAR_A1] * 2))
    old = taxonomy_figures(table, tree, 0.5, "validation", known, held)
    assert old.decodings["probable"].held_out.family == 1.0  # both named family Fa from known species
    now = taxonomy_figures(table, tree, 0.5, "validation", known, held, UnknownRanks.empty(), cosines)
    assert now.decodings["probable"].held_out.family == 0.0
    assert now.decodings["probable"].answered_ranks == old.decodings["probable"].answered_ranks  # known crops alike
