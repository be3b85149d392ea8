"""2-D projections say which method was drawn (issue 10.5: no silent UMAP -> PCA)."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from index.errors import InvalidInput
from index.scoring.projection import UMAP_MIN_POINTS, project_2d


def _vectors(n, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_umap_is_drawn_when_asked_and_possible():
    v = _vectors(60)
    xy, used = project_2d(v, "umap")
    assert used == "umap" and xy.shape == (60, 2)
    assert not np.allclose(xy, PCA(n_components=2, random_state=0).fit_transform(v))


def test_too_few_points_for_umap_are_drawn_with_pca_and_labelled_so():
    v = _vectors(UMAP_MIN_POINTS - 1)
    xy, used = project_2d(v, "umap")
    assert used == "pca"
    assert np.allclose(xy, PCA(n_components=2, random_state=0).fit_transform(v))


def test_unknown_projection_is_refused():
    with pytest.raises(InvalidInput, match="valid: pca, umap"):
        project_2d(_vectors(5), "tsne")
