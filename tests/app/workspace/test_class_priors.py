"""Class priors as a stored decision: decided at ``index build``, read at load, applied to the answers,
untouched by ``species add`` / ``remove`` (an added species answers with the stored median weight)."""

from __future__ import annotations

import numpy as np
import pytest

from index.catalog.decisions import load_decision
from index.catalog.embeddings import load_embeddings
from index.errors import InvalidInput
from index.records import TEST
from tests.app.workspace.test_species import held_out_examples


def _test_vectors(ws):
    _, v, labels = load_embeddings(ws.catalog, ws.current_model(None), (TEST,), with_labels=True)
    return v, labels


def test_priors_are_decided_at_build_and_applied_by_the_engine(tiny_ws, tmp_path):
    model = tiny_ws.current_model(None)
    built = tiny_ws.index_build(rebuild=False, priors="train", prior_tau=1.0)
    stored = load_decision(tiny_ws.catalog, model).priors
    assert built.priors == stored and (stored.source, stored.tau) == ("train", 1.0)
    assert sum(stored.weights.values()) == pytest.approx(1.0)
    engine = tiny_ws.engine()
    assert engine.priors == stored
    v, _ = _test_vectors(tiny_ws)
    sims = engine.prototypes.similarities(v)
    expected = sims / engine.calibration.temperature + np.log([stored.weights[n] for n in engine.prototypes.names])
    assert engine.logits(sims) == pytest.approx(expected)
    probs = engine.probabilities(sims)
    assert probs.sum(axis=1) == pytest.approx(1.0)
    assert (probs.argmax(1) == expected.argmax(1)).all()
    # a skewed user target moves answers towards the favoured class
    favoured = engine.prototypes.names[0]
    target = tmp_path / "target.csv"
    target.write_text(
        "class,weight\n" + "".join(f"{n},{1000 if n == favoured else 1}\n" for n in engine.prototypes.names)
    )
    tiny_ws.index_build(rebuild=False, priors=str(target), prior_tau=1.0)
    skewed = tiny_ws.engine()
    assert skewed.priors.source == "file"
    names = np.asarray(skewed.prototypes.names)
    before = (names[sims.argmax(1)] == favoured).sum()
    answers = names[skewed.logits(sims).argmax(1)]
    assert (answers == favoured).sum() > before
    verdicts = skewed.verdicts(v, sims)  # the engine's species answer is the prior-adjusted one
    known = verdicts.species != "unknown"
    assert known.any() and (verdicts.species[known] == answers[known]).all()
    # balanced: the nearest prototype again; a priors name that is neither a source nor a file is refused
    tiny_ws.index_build(rebuild=False, priors="balanced")
    assert (tiny_ws.engine().logits(sims).argmax(1) == sims.argmax(1)).all()
    with pytest.raises(InvalidInput):
        tiny_ws.index_build(rebuild=False, priors="no-such-file.csv")


def test_species_add_and_remove_keep_the_priors_and_the_known_answers(tiny_ws):
    model = tiny_ws.current_model(None)
    tiny_ws.index_build(rebuild=False, priors="train", prior_tau=1.0)
    decision = load_decision(tiny_ws.catalog, model)
    v, _ = _test_vectors(tiny_ws)
    engine = tiny_ws.engine()
    before = engine.verdicts(v).species
    name, examples = held_out_examples(tiny_ws)
    tiny_ws.species_add(name, examples)
    added = tiny_ws.engine()
    assert load_decision(tiny_ws.catalog, model) == decision  # adding decides nothing again
    bias = added.priors.log_bias(added.prototypes.names)
    assert bias[added.prototypes.names.index(name)] == pytest.approx(np.log(decision.priors.added_weight))
    during = added.verdicts(v).species
    moved = during != before
    assert set(during[moved].tolist()) <= {name}  # a known answer may only become the added species
    tiny_ws.species_remove(name)
    assert load_decision(tiny_ws.catalog, model) == decision
    assert (tiny_ws.engine().verdicts(v).species == before).all()  # remove undoes add exactly


class _Stop(Exception):
    pass


@pytest.mark.parametrize("label_rank", ["flat", "subtree"])
def test_training_gets_the_subtrees_of_the_catalogs_lineages(tiny_ws, monkeypatch, label_rank):
    """The app layer reads the lineages and passes the subtrees in; the embedder never reads the catalog."""
    import embedder.training
    from embedder.train_config import TrainConfig
    from index.records import TRAIN

    _, _, labels = load_embeddings(tiny_ws.catalog, tiny_ws.current_model(None), (TRAIN,), with_labels=True)
    parent, child, other = sorted(set(labels.tolist()))[:3]
    import index.catalog.taxa
    from index.taxonomy import Lineage

    a, p = ("kingdom", "Animalia"), ("phylum", "Testphyla")
    tree = {  # the catalog's lineages as the app layer reads them
        parent: Lineage(parent, "phylum", (a, p)),
        child: Lineage(child, "class", (a, p, ("class", "Testclass"))),
        other: Lineage(other, "class", (a, ("phylum", "Otherphyla"), ("class", "Otherclass"))),
    }
    monkeypatch.setattr(index.catalog.taxa, "tree", lambda catalog: tree)
    seen = {}

    def fake_train(config, train_items, val_items, out_dir, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(embedder.training, "train", fake_train)
    with pytest.raises(_Stop):
        tiny_ws.train(TrainConfig(label_rank=label_rank, epochs=1), model="m")
    assert seen["subtrees"] == ({parent: [child]} if label_rank == "subtree" else None)
