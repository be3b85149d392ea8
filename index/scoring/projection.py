"""2-D projections of embeddings for maps: PCA, or UMAP (umap-learn, installed with oceanid)."""

from __future__ import annotations

import logging

import numpy as np

from index.errors import InvalidInput

log = logging.getLogger(__name__)

METHODS = ("pca", "umap")
UMAP_MIN_POINTS = 16  # UMAP's default neighbourhood (15) needs more points than that


def project_2d(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str]:
    """(n, d) float32 -> ((n, 2) float coordinates, the method actually used).

    UMAP needs at least ``UMAP_MIN_POINTS`` vectors; below that PCA is drawn and the
    returned method says so (callers label the plot with it, never with the request).
    Fewer than two vectors map to the origin. Raises InvalidInput for an unknown method.
    """
    if method not in METHODS:
        raise InvalidInput(f"unknown projection {method!r}; valid: {', '.join(METHODS)}")
    if method == "umap" and len(vectors) >= UMAP_MIN_POINTS:
        import umap

        return umap.UMAP(n_components=2, random_state=seed, metric="cosine").fit_transform(vectors), "umap"
    if method == "umap":
        log.info("UMAP needs >= %d points, got %d: drawing PCA", UMAP_MIN_POINTS, len(vectors))
    from sklearn.decomposition import PCA

    if len(vectors) < 2:
        return np.zeros((len(vectors), 2)), "pca"
    return PCA(n_components=2, random_state=seed).fit_transform(vectors), "pca"
