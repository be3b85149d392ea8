"""Support classes in one transaction, the content digest, trained prototypes, crop listings."""

from __future__ import annotations

import numpy as np
import pytest

from index.catalog.catalog import Catalog
from index.catalog.embeddings import (
    add_support_class,
    content_digest,
    crop_rows,
    load_embeddings,
    load_prototypes,
    register_model,
    remove_support_class,
    replace_trained_prototypes,
    store_embeddings,
    trained_prototypes_match,
)
from index.scoring.prototypes import Prototypes


def unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def catalog(tmp_path):
    """A catalog with 4 crops: two of 'a' (train), two support crops of 'new'."""
    cat = Catalog(tmp_path / "c.duckdb")
    cat.ensure_schema()
    with cat.write() as con:
        con.execute(
            "INSERT INTO images (image_id, source, source_id, sha256, path, width, height) VALUES "
            "(1, 'folders', 'x', 's1', 'images/1.png', 8, 8), (2, 'added', 'y', 's2', 'images/2.png', 8, 8)"
        )
        con.execute(
            "INSERT INTO annotations (annotation_id, image_id, concept, x, y, w, h, group_key, crop_path, split) "
            "VALUES (1, 1, 'a', 0, 0, 8, 8, 'g1', 'crops/1.png', 'train'), "
            "(2, 1, 'a', 0, 0, 8, 8, 'g1', 'crops/2.png', 'train'), "
            "(3, 2, 'new', 0, 0, 8, 8, 'g2', 'crops/3.png', 'support'), "
            "(4, 2, 'new', 0, 0, 8, 8, 'g2', 'crops/4.png', 'support')"
        )
    register_model(cat, "m", "h" * 64, 2, "tiny")
    store_embeddings(cat, "m", np.array([1, 2]), unit([[1, 0], [1, 0.1]]))
    replace_trained_prototypes(cat, "m", Prototypes.fit(unit([[1, 0], [1, 0.1]]), ["a", "a"]))
    return cat


def test_add_support_class_writes_vectors_prototype_and_version_together(catalog):
    base, _ = load_prototypes(catalog, "m")
    version = catalog.prototypes_version("m")
    vectors = unit([[0, 1], [0.1, 1]])
    protos = base.with_class("new", vectors)
    assert add_support_class(catalog, "m", "new", np.array([3, 4]), vectors, protos) == version + 1
    loaded, origins = load_prototypes(catalog, "m")
    assert origins == {"a": "train", "new": "added"}
    np.testing.assert_allclose(loaded.rows_of("new"), protos.rows_of("new"), rtol=1e-6)
    assert load_embeddings(catalog, "m")[0].tolist() == [1, 2, 3, 4]
    removed = remove_support_class(catalog, "m", "new")
    assert removed.ids.tolist() == [3, 4] and removed.crop_paths == ["crops/3.png", "crops/4.png"]
    assert removed.image_paths == ["images/2.png"]  # the frame no row uses any more
    assert load_embeddings(catalog, "m")[0].tolist() == [1, 2]
    assert load_prototypes(catalog, "m")[1] == {"a": "train"} and catalog.prototypes_version("m") == version + 2
    assert [r.annotation_id for r in crop_rows(catalog)] == [1, 2]


def test_add_support_class_is_all_or_nothing(catalog, monkeypatch):
    base, _ = load_prototypes(catalog, "m")
    vectors = unit([[0, 1], [0.1, 1]])

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Catalog, "bump_prototypes_version", boom)
    with pytest.raises(RuntimeError):
        add_support_class(catalog, "m", "new", np.array([3, 4]), vectors, base.with_class("new", vectors))
    monkeypatch.undo()
    assert load_embeddings(catalog, "m")[0].tolist() == [1, 2]  # the vectors were rolled back too
    assert load_prototypes(catalog, "m")[1] == {"a": "train"}


def test_content_digest_is_order_independent_and_content_sensitive():
    ids = np.array([5, 1, 3])
    vectors = unit(np.random.default_rng(0).normal(size=(3, 4)))
    d = content_digest(ids, vectors)
    order = np.array([2, 0, 1])
    assert content_digest(ids[order], vectors[order]) == d
    changed = vectors.copy()
    changed[1, 0] = np.nextafter(changed[1, 0], 2)
    assert content_digest(ids, changed) != d
    assert content_digest(np.array([5, 1, 4]), vectors) != d
    assert content_digest(ids[:2], vectors[:2]) != d


def test_trained_prototypes_match(catalog):
    same = Prototypes.fit(unit([[1, 0], [1, 0.1]]), ["a", "a"])
    assert trained_prototypes_match(catalog, "m", same)
    assert not trained_prototypes_match(catalog, "m", Prototypes.fit(unit([[1, 0]]), ["a"]))
    assert not trained_prototypes_match(catalog, "m", Prototypes.fit(unit([[1, 0], [0, 1]]), ["a", "b"]))


def test_crop_rows_filters(catalog):
    assert [r.annotation_id for r in crop_rows(catalog, concept="new")] == [3, 4]
    assert [r.annotation_id for r in crop_rows(catalog, split="train", limit=1)] == [1]
    assert [r.annotation_id for r in crop_rows(catalog, embedded_by="m")] == [1, 2]


def test_float_values_reads_list_chunks_from_their_buffers_with_offsets():
    # would fail: reading the child buffer from 0 (ignores a sliced chunk's offsets), assuming int32 offsets
    # for a large list, or failing on an empty column
    import pyarrow as pa

    from index.catalog.embeddings import _float_values

    rows = pa.array([[1.0, 2.0], [3.0, 4.0], [9.0, 8.0]], type=pa.list_(pa.float32()))
    column = pa.chunked_array([rows.slice(1), pa.array([[5.0, 6.0]], type=pa.list_(pa.float32()))])
    np.testing.assert_array_equal(_float_values(column), np.float32([3, 4, 9, 8, 5, 6]))
    large = pa.chunked_array([pa.array([[1.0], [2.0, 7.0]], type=pa.large_list(pa.float32())).slice(1)])
    np.testing.assert_array_equal(_float_values(large), np.float32([2, 7]))
    assert _float_values(pa.chunked_array([], type=pa.list_(pa.float32()))).shape == (0,)
    with_null = pa.chunked_array([pa.array([[1.0, None]], type=pa.list_(pa.float32()))])
    assert np.isnan(_float_values(with_null)[1])
