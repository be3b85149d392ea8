"""Fitted OOD scorers stored and read back: the same scores, and only for their own prototypes."""

from __future__ import annotations

import numpy as np
import pytest

from index.catalog.decisions import prototypes_digest
from index.scoring.ood import SCORERS, make_scorer
from index.scoring.prototypes import Prototypes
from index.scoring.scorer_store import load_scorers, save_scorers, scorer_folder


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    labels = np.repeat(["a", "b", "c", "new"], [40, 40, 40, 4])
    vectors = _unit(centres[np.searchsorted(["a", "b", "c", "new"], labels)] + 0.3 * rng.normal(size=(len(labels), 16)))
    queries = _unit(rng.normal(size=(25, 16)))
    return vectors, labels, Prototypes.fit(vectors, labels), queries


@pytest.mark.parametrize("name", list(SCORERS))
def test_a_stored_scorer_scores_like_the_fitted_one(tmp_path, data, name):
    vectors, labels, prototypes, queries = data
    options = {"few_shot": ("new",)} if name == "knn" else {}
    fitted = make_scorer(name, **options).fit(vectors, labels, prototypes)
    digest = prototypes_digest(prototypes)
    folder = scorer_folder(tmp_path, "m", "known", digest)
    save_scorers(folder, {name: fitted}, digest, version=3)
    loaded = load_scorers(folder, prototypes, digest)
    assert list(loaded) == [name]
    np.testing.assert_array_equal(loaded[name].score(queries), fitted.score(queries))


def test_the_knn_few_shot_shift_survives_the_round_trip(tmp_path, data):
    vectors, labels, prototypes, _ = data
    fitted = make_scorer("knn", few_shot=("new",)).fit(vectors, labels, prototypes)
    assert fitted.small, "the fixture must exercise the few-shot branch"
    digest = prototypes_digest(prototypes)
    folder = save_scorers(scorer_folder(tmp_path, "m", "added-knn", digest), {"knn": fitted}, digest, 1)
    near_new = vectors[labels == "new"] + 0.0
    np.testing.assert_array_equal(
        load_scorers(folder, prototypes, digest)["knn"].score(near_new), fitted.score(near_new)
    )


def test_scorers_of_other_prototypes_or_none_stored_read_as_none(tmp_path, data):
    vectors, labels, prototypes, _ = data
    digest = prototypes_digest(prototypes)
    folder = scorer_folder(tmp_path, "m", "known", digest)
    assert load_scorers(folder, prototypes, digest) is None
    save_scorers(folder, {"prototype": make_scorer("prototype").fit(vectors, labels, prototypes)}, digest, 1)
    assert load_scorers(folder, prototypes, "0" * 64) is None


def test_only_the_newest_folders_of_a_kind_are_kept(tmp_path, data):
    import os

    from index.scoring.scorer_store import KEEP

    vectors, labels, prototypes, _ = data
    scorer = make_scorer("prototype").fit(vectors, labels, prototypes)
    folders = []
    for n in range(KEEP + 2):
        digest = f"{n:02d}" + "0" * 62
        folders.append(save_scorers(scorer_folder(tmp_path, "m", "known", digest), {"prototype": scorer}, digest, n))
        os.utime(folders[-1], (n + 1, n + 1))  # distinct ages
    kept = sorted(p.name for p in folders[0].parent.iterdir())
    assert kept == sorted(f.name for f in folders[-KEEP:])
