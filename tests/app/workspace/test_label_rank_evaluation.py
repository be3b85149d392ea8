"""``evaluate`` grades answers strictly and at the label's rank (index.metrics.label_rank), and its
report shows the subtree answers apart from real errors."""

from __future__ import annotations

import pytest

from index.catalog.embeddings import load_embeddings
from index.records import TEST
from index.taxonomy import Lineage


def test_evaluate_reports_top1_at_the_labels_rank(tiny_ws, tmp_path, monkeypatch):
    import app.workspace.evaluation

    _, _, labels = load_embeddings(tiny_ws.catalog, tiny_ws.current_model(None), (TEST,), with_labels=True)
    names = sorted(set(labels.tolist()))
    parent, children = names[0], names[1:3]
    a, p = ("kingdom", "Animalia"), ("phylum", "Testphyla")
    tree = {parent: Lineage(parent, "phylum", (a, p))}
    tree.update({c: Lineage(c, "class", (a, p, ("class", f"C{i}"))) for i, c in enumerate(children)})
    monkeypatch.setattr(app.workspace.evaluation, "tree", lambda catalog: tree)
    s = tiny_ws.evaluate(tmp_path / "report")
    c = s.classification
    lr = c.label_rank
    n = sum(lr["kinds"].values())
    assert lr["holders"] == [parent]
    assert lr["kinds"]["exact"] / n == pytest.approx(c.top1)
    assert c.top1_at_label_rank == pytest.approx((lr["kinds"]["exact"] + lr["kinds"]["subtree"]) / n)
    assert c.top1_at_label_rank >= c.top1
    # only the parent's crops can be answered inside a subtree; only its children's by an ancestor
    assert all(v["subtree"] == 0 for k, v in lr["per_class"].items() if k != parent)
    assert all(v["ancestor"] == 0 for k, v in lr["per_class"].items() if k not in children)
    assert s.to_dict()["classification"]["top1_at_label_rank"] == c.top1_at_label_rank
    report = (tmp_path / "report" / "summary.md").read_text()
    assert "At the label's rank" in report and f"| {parent} |" in report
