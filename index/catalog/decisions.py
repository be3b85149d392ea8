"""The engine's stored decisions: decision scorer, thresholds and calibration of one model.

What the query engine fits from the catalog (which OOD scorer decides "unknown", every
scorer's threshold, the calibration temperature) is decided ONCE, when a model's trained
prototypes are built, and stored here with a digest of those prototypes. Loading reads
it back; it never re-decides, so adding a species (which changes the prototypes but not
the trained ones) can never change how the known species are judged.

One row per model in the catalog's ``decisions`` table (:mod:`index.catalog.catalog`'s schema;
an older catalog gains it when it is next opened). The row's payload is this dataclass as
JSON, so a field added later (the rank threshold) needs no schema change: a payload without
it reads back the field's default, and the next ``index build`` decides again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from index.catalog.catalog import Catalog
from index.metrics.counts import CountConfusion
from index.metrics.ranks import RankThresholdChoice
from index.metrics.unknown_ranks import UnknownRanks
from index.scoring.calibration import Calibration
from index.scoring.ood_choice import ScorerChoice
from index.scoring.priors import ClassPriors
from index.scoring.prototypes import Prototypes
from index.taxonomy import RANK_THRESHOLD


@dataclass(frozen=True)
class Decision:
    """How one model's engine judges crops, fixed when its trained prototypes were built."""

    model_id: str
    prototypes_digest: str  # :func:`prototypes_digest` of the trained prototypes it belongs to
    scorer: str  # the OOD scorer that decides "unknown" (a key of index.scoring.ood.SCORERS)
    thresholds: dict[str, float]  # scorer -> threshold (below = unknown), fitted on known val crops
    tpr: float  # share of known validation crops every threshold accepts
    calibration: Calibration | None = None  # temperature of prototype cosines (None: too few val crops)
    choice: ScorerChoice | None = None  # how ``scorer`` was chosen (held-out validation or default)
    prototypes_version: int = 0  # the model's prototypes version when this was decided
    notes: tuple[str, ...] = field(default_factory=tuple)
    # The probability a taxon needs to be named (probable decoding), chosen on validation
    # (``rank_choice``); a decision stored before it existed reads back the provisional default.
    rank_threshold: float = RANK_THRESHOLD
    rank_choice: RankThresholdChoice | None = None
    # How often a rank named for a crop judged unknown was right on held-out species
    # (``index.metrics.unknown_ranks``); None (a decision from before it existed): no rank is named
    # for unknown crops until ``index build`` measures it.
    unknown_ranks: UnknownRanks | None = None
    # The class priors added to the calibrated scores (``index.scoring.priors``: source, tau, weights);
    # None (a decision from before priors): equal priors, until ``index build`` decides them.
    priors: ClassPriors | None = None
    # Validation crops by true class and answer (``index.metrics.counts``): what ``oceanid count``
    # adjusts raw counts with; None (a decision from before counts): ``index build`` adds it.
    counts: CountConfusion | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        calibration = Calibration(**d["calibration"]) if d.get("calibration") else None
        choice = ScorerChoice(**d["choice"]) if d.get("choice") else None
        return cls(
            d["model_id"],
            d["prototypes_digest"],
            d["scorer"],
            {k: float(v) for k, v in d["thresholds"].items()},
            float(d["tpr"]),
            calibration,
            choice,
            int(d.get("prototypes_version", 0)),
            tuple(d.get("notes", ())),
            float(d.get("rank_threshold", RANK_THRESHOLD)),
            RankThresholdChoice(**d["rank_choice"]) if d.get("rank_choice") else None,
            UnknownRanks.from_dict(d["unknown_ranks"]) if d.get("unknown_ranks") else None,
            ClassPriors.from_dict(d["priors"]) if d.get("priors") else None,
            counts=CountConfusion.from_dict(d["counts"]) if d.get("counts") else None,
        )


def prototypes_digest(prototypes: Prototypes) -> str:
    """sha256 of a set of prototypes: names and rows, by name (independent of their order)."""
    digest = hashlib.sha256()
    for name in sorted(prototypes.names):
        digest.update(name.encode() + b"\0")
        digest.update(np.ascontiguousarray(prototypes.rows_of(name), dtype=np.float32).tobytes())
    return digest.hexdigest()


def store_decision(catalog: Catalog, decision: Decision) -> None:
    """Replace the model's stored decision (one transaction)."""
    with catalog.write() as con:
        con.execute(
            "INSERT OR REPLACE INTO decisions (model_id, prototypes_digest, payload) VALUES (?, ?, ?)",
            [decision.model_id, decision.prototypes_digest, json.dumps(decision.to_dict())],
        )


def load_decision(catalog: Catalog, model_id: str) -> Decision | None:
    """The model's stored decision, or None (never decided, or a catalog from before decisions were stored)."""
    with catalog.read() as con:
        row = con.execute("SELECT payload FROM decisions WHERE model_id = ?", [model_id]).fetchone()
    return Decision.from_dict(json.loads(row[0])) if row else None


def drop_decision(catalog: Catalog, model_id: str) -> None:
    """Forget the model's decision (the next prototype build decides again)."""
    with catalog.write() as con:
        con.execute("DELETE FROM decisions WHERE model_id = ?", [model_id])
