"""2-D projections of embeddings for maps (PCA, or UMAP when installed)."""

from __future__ import annotations

import numpy as np


def project_2d(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(n, d) float32 -> (n, 2) float coordinates with PCA, or UMAP when asked for and installed.

    Fewer than two vectors map to the origin.
    """
    if method == "umap":
        try:
            import umap

            return umap.UMAP(n_components=2, random_state=seed, metric="cosine").fit_transform(vectors)
        except ImportError:
            pass
    from sklearn.decomposition import PCA

    if len(vectors) < 2:
        return np.zeros((len(vectors), 2))
    return PCA(n_components=2, random_state=seed).fit_transform(vectors)
