"""Per-epoch validation during training (the product's evaluation is app/index's):
class means of reference embeddings classify query embeddings by cosine
similarity; top-k accuracy and F1 from scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, top_k_accuracy_score

from index.errors import InvalidInput


def class_prototypes(vectors: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean vector per class, L2-normalised.

    Args:
        vectors: (n, d) float32 embeddings; labels: (n,) int in [0, num_classes).
    Returns:
        (num_classes, d) float32; a class without samples gets a zero row.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    protos = np.zeros((num_classes, vectors.shape[1]), np.float32)
    np.add.at(protos, labels, vectors)
    norms = np.linalg.norm(protos, axis=1, keepdims=True)
    return np.divide(protos, norms, out=np.zeros_like(protos), where=norms > 0)


def prototype_metrics(
    ref_vectors: np.ndarray,
    ref_labels: np.ndarray,
    query_vectors: np.ndarray,
    query_labels: np.ndarray,
    num_classes: int,
) -> dict[str, float]:
    """Classify queries by the most similar prototype of the reference set.

    Args:
        ref_vectors: (n, d) float32, ref_labels: (n,) int — prototypes come from these.
        query_vectors: (m, d) float32, query_labels: (m,) int — scored.
    Returns:
        ``{"top1", "top5", "f1_macro", "n"}``; top5 is top-min(5, C) accuracy and
        f1_macro averages over the classes present in labels or predictions.
    Raises:
        InvalidInput: no queries.
    """
    query_labels = np.asarray(query_labels, dtype=np.int64)
    if len(query_labels) == 0:
        raise InvalidInput("no query embeddings to evaluate")
    scores = np.asarray(query_vectors, np.float32) @ class_prototypes(ref_vectors, ref_labels, num_classes).T
    pred = scores.argmax(axis=1)
    labels = np.arange(num_classes)
    # sklearn warns and answers 1.0 when k >= the number of classes; say 1.0 without the warning
    top5 = 1.0 if num_classes <= 5 else float(top_k_accuracy_score(query_labels, scores, k=5, labels=labels))
    return {
        "top1": float((pred == query_labels).mean()),
        "top5": top5,
        "f1_macro": float(f1_score(query_labels, pred, average="macro", zero_division=0)),
        "n": int(len(query_labels)),
    }
