"""Grading at the label's rank on a hand-made tree: an answer inside the label's subtree is right,
a sibling's is wrong, an ancestor of the label is counted apart (not right)."""

from __future__ import annotations

import numpy as np
import pytest

from index.metrics.label_rank import KINDS, answer_kinds, label_rank_report, subtree_matrix, subtrees
from index.taxonomy import Lineage

A = ("kingdom", "Animalia")
ARTH = ("phylum", "Arthropoda")
COP = ("class", "Copepoda")
TREE = {
    # a label named like no taxon, whose lineage ends at class Copepoda (as in the plankton set)
    "Copepod": Lineage("Copepod", None, (A, ARTH, COP)),
    "Calanus": Lineage("Calanus", "genus", (A, ARTH, COP, ("order", "Calanoida"), ("genus", "Calanus"))),
    "Oithona": Lineage("Oithona", "genus", (A, ARTH, COP, ("order", "Cyclopoida"), ("genus", "Oithona"))),
    "Aglantha": Lineage("Aglantha", "genus", (A, ("phylum", "Cnidaria"), ("genus", "Aglantha"))),
}
CLASSES = ["Aglantha", "Calanus", "Copepod", "Oithona", "Snow"]  # Snow: no lineage
IX = {c: i for i, c in enumerate(CLASSES)}


def _grade(pairs):
    t = np.array([IX[a] for a, _ in pairs])
    p = np.array([IX[b] for _, b in pairs])
    return [KINDS[k] for k in answer_kinds(t, p, subtree_matrix(CLASSES, TREE))]


def test_subtree_matrix_on_a_hand_made_tree():
    m = subtree_matrix(CLASSES, TREE)
    assert m[IX["Copepod"], IX["Calanus"]] and m[IX["Copepod"], IX["Oithona"]]
    assert not m[IX["Calanus"], IX["Copepod"]]  # an ancestor is not inside its member's subtree
    assert not m[IX["Calanus"], IX["Oithona"]]  # siblings
    assert not m[IX["Copepod"], IX["Aglantha"]]
    assert not m[IX["Snow"]].sum() - 1 and not m[:, IX["Snow"]].sum() - 1  # no lineage: only itself
    assert np.diag(m).all()
    assert subtrees(CLASSES, TREE) == {"Copepod": ["Calanus", "Oithona"]}


@pytest.mark.parametrize(
    ("label", "answer", "kind"),
    [
        ("Copepod", "Copepod", "exact"),
        ("Copepod", "Calanus", "subtree"),  # more specific than the label: right
        ("Calanus", "Oithona", "error"),  # a sibling: wrong
        ("Calanus", "Copepod", "ancestor"),  # less specific than the label: not right
        ("Copepod", "Aglantha", "error"),
        ("Snow", "Copepod", "error"),
        ("Copepod", "Snow", "error"),
    ],
)
def test_each_kind_of_answer(label, answer, kind):
    assert _grade([(label, answer)]) == [kind]


def test_report_counts_and_top1_at_label_rank():
    pairs = [
        ("Copepod", "Copepod"),
        ("Copepod", "Calanus"),
        ("Copepod", "Calanus"),
        ("Copepod", "Oithona"),
        ("Copepod", "Aglantha"),
        ("Calanus", "Calanus"),
        ("Calanus", "Oithona"),
        ("Calanus", "Copepod"),
    ]
    t = np.array([IX[a] for a, _ in pairs])
    p = np.array([IX[b] for _, b in pairs])
    r = label_rank_report(t, p, CLASSES, subtree_matrix(CLASSES, TREE))
    assert r.top1_strict == pytest.approx(2 / 8)
    assert r.top1_at_label_rank == pytest.approx(5 / 8)  # 2 exact + 3 inside the subtree
    assert r.kinds == {"exact": 2, "subtree": 3, "ancestor": 1, "error": 2}
    assert r.per_class["Copepod"] == {"exact": 1, "subtree": 3, "ancestor": 0, "error": 1}
    assert r.subtree_answers == {"Copepod": {"Calanus": 2, "Oithona": 1}}
    assert r.holders == ("Copepod",)
    assert r.to_dict()["top1_at_label_rank"] == pytest.approx(5 / 8)


def test_flat_labels_grade_as_strict_top1():
    classes = ["a", "b", "c"]
    m = subtree_matrix(classes, {})
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    r = label_rank_report(t, p, classes, m)
    assert r.top1_at_label_rank == pytest.approx((t == p).mean()) == pytest.approx(r.top1_strict)
