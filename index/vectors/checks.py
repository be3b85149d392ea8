"""What the vector index accepts: float32 ``(n, d)`` L2-normalised vectors and unique int64 catalog ids
(numpy only, no faiss: the scoring floor checks its vectors with the same rule)."""

from __future__ import annotations

import numpy as np

from index.errors import InvalidInput

_NORM_TOL = 1e-3  # allowed | ||x|| - 1 | for "L2-normalised"


def check_vectors(vectors: np.ndarray, dim: int | None = None, name: str = "vectors") -> None:
    """Check ``vectors`` is float32 ``(n, dim)``, finite and L2-normalised.

    Raises:
        InvalidInput: wrong type, dtype, shape, dim, non-finite or non-unit rows.
    """
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
        raise InvalidInput(f"{name} must be a 2-D numpy array (n, d)")
    if vectors.dtype != np.float32:
        raise InvalidInput(f"{name} must be float32, got {vectors.dtype}")
    if dim is not None and vectors.shape[1] != dim:
        raise InvalidInput(f"{name} have dim {vectors.shape[1]}, the index has dim {dim}")
    if vectors.shape[0] == 0:
        return
    if not np.isfinite(vectors).all():
        raise InvalidInput(f"{name} contain NaN or infinity")
    norms = np.linalg.norm(vectors, axis=1)
    if np.abs(norms - 1.0).max() > _NORM_TOL:
        raise InvalidInput(f"{name} must be L2-normalised (found a row with norm {norms.max():.4g})")


def check_ids(ids: np.ndarray, n: int) -> np.ndarray:
    """``ids`` as a contiguous int64 array: 1-D, one per vector, integers >= 0, no duplicates.

    Raises:
        InvalidInput: any of these broken.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.shape[0] != n:
        raise InvalidInput(f"ids must be 1-D with one id per vector ({n}), got shape {ids.shape}")
    if n and not np.issubdtype(ids.dtype, np.integer):
        raise InvalidInput(f"ids must be integers, got {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    if n and ids.min() < 0:
        raise InvalidInput("ids must be >= 0 (catalog keys)")
    if np.unique(ids).shape[0] != n:
        raise InvalidInput("ids contain duplicates")
    return np.ascontiguousarray(ids)
