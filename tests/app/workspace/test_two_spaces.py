"""Two vector spaces per model (app/workspace/spaces.py): kept by embed, index build, species add / remove."""

from __future__ import annotations

import numpy as np
import pytest

from tests.app.workspace.test_identify import crops
from tests.app.workspace.test_species import held_out_examples


@pytest.fixture
def two_ws(tiny_ws):
    """The tiny workspace with a general space beside its tuned one (a tiny frozen encoder, for speed)."""
    from embedder.general import GeneralConfig, write_general_model

    write_general_model(tiny_ws.paths.model("tiny.general"), GeneralConfig("tiny", "none", 32))
    tiny_ws.embed("tiny", device="cpu")
    tiny_ws.index_build("tiny")
    return tiny_ws


def known_crops(ws, n=60):
    return [ws.home / p for _, p, _ in crops(ws, split="test", limit=n)]


def answers(ws, paths):
    return [(a.species, a.named_by, a.unknown_by) for a in ws.identify(paths, model="tiny")]


def test_a_model_from_scratch_keeps_one_space_and_says_the_tuned_space_answered(tiny_ws):
    assert tiny_ws.spaces("tiny") is None
    got = tiny_ws.identify(known_crops(tiny_ws, 10), model="tiny")
    assert {a.named_by for a in got if a.species != "unknown"} <= {"tuned"}
    assert all(a.unknown_by == "tuned" for a in got if a.species == "unknown")
    assert all(a.named_by == "" for a in got if a.species == "unknown")


def test_the_general_space_has_its_own_id_vectors_generation_and_decision(two_ws):
    from index.catalog.embeddings import load_embeddings, model_record
    from index.catalog.spaces import load_spaces_decision
    from index.vectors.generations import current_generation

    tuned, general = model_record(two_ws.catalog, "tiny"), model_record(two_ws.catalog, "tiny.general")
    assert tuned.config_hash != general.config_hash
    assert current_generation(two_ws.home, "tiny.general") is not None
    ti, _ = load_embeddings(two_ws.catalog, "tiny")
    gi, _ = load_embeddings(two_ws.catalog, "tiny.general")
    np.testing.assert_array_equal(ti, gi)  # every crop in both spaces
    decision = load_spaces_decision(two_ws.catalog, "tiny")
    assert (decision.naming, decision.general_id) == ("fused", "tiny.general")
    # the measured rule (bench/RESULTS.md "Two vector spaces: every rule measured")
    assert (decision.unknown, decision.fusion.weight) == ("two-stage", 0.3)
    spaces = two_ws.spaces("tiny")
    assert spaces is not None and spaces.general.model_id == "tiny.general"
    # a second build with nothing changed decides nothing again
    assert two_ws.index_build("tiny", rebuild=False).built is False
    assert load_spaces_decision(two_ws.catalog, "tiny").digest == decision.digest


def test_answers_say_which_space_named_and_which_decided_unknown(two_ws):
    got = two_ws.identify(known_crops(two_ws, 40), model="tiny")
    named = [a for a in got if a.species != "unknown"]
    assert named and all(a.named_by == "fused" and a.unknown_by == "" for a in named)
    assert all(a.unknown_by == "tuned" and a.named_by == "" for a in got if a.species == "unknown")
    record = got[0].to_dict()
    assert {"named_by", "unknown_by"} <= set(record)
    # the answer is the fused space's nearest species, not the tuned space's, wherever they differ
    spaces = two_ws.spaces("tiny")
    from PIL import Image

    images = [Image.open(p) for p in known_crops(two_ws, 40)]
    t, g = spaces.embed(images)
    fused_top = np.asarray(spaces.tuned.prototypes.names)[spaces.similarities(t, g).argmax(1)]
    assert [a.top[0][0] for a in got] == list(fused_top)
    tuned_top = np.asarray(spaces.tuned.prototypes.names)[spaces.tuned.prototypes.similarities(t).argmax(1)]
    assert (tuned_top != fused_top).any()  # so naming in the tuned space alone fails the check above


def test_species_add_and_remove_keep_both_spaces_and_known_answers(two_ws):
    paths = known_crops(two_ws)
    before = answers(two_ws, paths)
    spaces = two_ws.spaces("tiny")
    n_tuned, n_general = spaces.tuned.index.ntotal, spaces.general.index.ntotal
    name, examples = held_out_examples(two_ws)
    two_ws.species_add(name, examples)
    spaces = two_ws.spaces("tiny")
    assert spaces is not None
    assert name in spaces.tuned.prototypes.names and name in spaces.general.prototypes.names
    assert (spaces.tuned.index.ntotal, spaces.general.index.ntotal) == (n_tuned + 5, n_general + 5)
    after = answers(two_ws, paths)
    changed = [(b, a) for b, a in zip(before, after, strict=False) if b != a]
    assert all(a[0] == name for _, a in changed), changed  # a known crop's answer changes only to the added one
    # an example itself is named the added species by the fused space
    assert name in [s for s, _ in two_ws.identify(examples[:1], model="tiny", k=3)[0].top]
    two_ws.species_remove(name)
    spaces = two_ws.spaces("tiny")
    assert name not in spaces.general.prototypes.names
    assert (spaces.tuned.index.ntotal, spaces.general.index.ntotal) == (n_tuned, n_general)
    assert answers(two_ws, paths) == before  # remove restores every answer


def test_search_in_each_space_matches_brute_force(two_ws):
    """The oracle: numpy over every stored vector of the space (the fused one built by the stored fusion)."""
    from index.catalog.embeddings import load_embeddings

    query = int(crops(two_ws, split="test", limit=1)[0][0])
    ti, tv = load_embeddings(two_ws.catalog, "tiny")
    gi, gv = load_embeddings(two_ws.catalog, "tiny.general")
    fusion = two_ws.spaces("tiny").decision.fusion
    spaces = {"tuned": tv, "general": gv, "fused": fusion.fuse(tv, gv)}
    for space, vectors in spaces.items():
        scores = vectors @ vectors[ti == query][0]
        scores[ti == query] = -np.inf
        expected = list(ti[np.argsort(-scores, kind="stable")[:5]])
        hits = two_ws.search(query, k=5, model="tiny", space=space)
        assert [h.annotation_id for h in hits] == expected, space
        np.testing.assert_allclose([h.score for h in hits], np.sort(scores)[::-1][:5], atol=1e-4)
    assert [h.annotation_id for h in two_ws.search(query, k=5, model="tiny")] == [
        h.annotation_id for h in two_ws.search(query, k=5, model="tiny", space="fused")
    ]  # the default


def test_search_in_a_space_the_model_lacks_is_one_clear_error(tiny_ws):
    from index.errors import InvalidInput

    query = int(crops(tiny_ws, split="test", limit=1)[0][0])
    assert tiny_ws.search(query, k=3, model="tiny")  # one space: the tuned one, as before
    with pytest.raises(InvalidInput, match="one vector space"):
        tiny_ws.search(query, k=3, model="tiny", space="general")
    with pytest.raises(InvalidInput, match="valid: tuned, general, fused"):
        tiny_ws.search(query, k=3, model="tiny", space="both")


def test_index_verify_checks_the_general_space_too(two_ws):
    from index.errors import OceanidError
    from index.vectors.generations import current_generation, model_dir

    assert two_ws.index_verify("tiny").ok
    live = model_dir(two_ws.home, "tiny.general") / current_generation(two_ws.home, "tiny.general")
    index_file = next(p for p in live.iterdir() if p.suffix == ".faiss")
    index_file.write_bytes(index_file.read_bytes()[:-8] + b"corrupt!")
    with pytest.raises(OceanidError):
        two_ws.index_verify("tiny")
