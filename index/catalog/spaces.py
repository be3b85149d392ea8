"""A model's second (general) vector space in the catalog: its stored two-space decision
(index/scoring/fusion.py's :class:`SpacesDecision`) and dropping an added species' prototypes from it.

Kept in the ``decisions`` table beside the per-space decisions, under the key ``<model>.fused`` (a
space id of its own, never a model's), so ``index build`` writes it once and loading only reads it.
"""

from __future__ import annotations

import json

from index.catalog.catalog import Catalog
from index.catalog.embeddings import ADDED
from index.scoring.fusion import SpacesDecision

FUSED_SUFFIX = ".fused"


def store_spaces_decision(catalog: Catalog, decision: SpacesDecision) -> None:
    """Replace the model's stored two-space decision (one transaction)."""
    with catalog.write() as con:
        con.execute(
            "INSERT OR REPLACE INTO decisions (model_id, prototypes_digest, payload) VALUES (?, ?, ?)",
            [decision.model_id + FUSED_SUFFIX, decision.digest, json.dumps(decision.to_dict())],
        )


def load_spaces_decision(catalog: Catalog, model_id: str) -> SpacesDecision | None:
    """The model's stored two-space decision, or None (a home with one space, or never built)."""
    with catalog.read() as con:
        row = con.execute("SELECT payload FROM decisions WHERE model_id = ?", [model_id + FUSED_SUFFIX]).fetchone()
    return SpacesDecision.from_dict(json.loads(row[0])) if row else None


def drop_spaces_decision(catalog: Catalog, model_id: str) -> None:
    with catalog.write() as con:
        con.execute("DELETE FROM decisions WHERE model_id = ?", [model_id + FUSED_SUFFIX])


def drop_added_class(catalog: Catalog, model_id: str, concept: str) -> int:
    """Delete ``concept``'s added prototype rows of one model (its support crops and vectors are removed by
    :func:`index.catalog.embeddings.remove_support_class`, for every model) and bump that model's prototypes
    version, in one transaction; returns the new version."""
    with catalog.write() as con:
        con.execute(
            "DELETE FROM prototypes WHERE model_id = ? AND concept = ? AND origin = ?", [model_id, concept, ADDED]
        )
        return catalog.bump_prototypes_version(model_id, con)
