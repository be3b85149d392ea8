"""Choose the unknown-detection scorer on the catalog's own held-out species.

When a catalog holds species kept out of training ("held out"), their
validation crops are real unknowns for this very data set: every scorer is
fitted on the training vectors, its threshold set on known validation crops
(:data:`index.scoring.ood.TPR_TARGET` of them accepted), and it is judged by AUROC of
known vs held-out validation crops. The best one is chosen unless it beats the
measured default (:data:`index.scoring.ood.DEFAULT_SCORER`) by no more than
``margin`` (ties and noise go to the default). Without held-out validation
crops the default is kept, with its threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from index.errors import InvalidInput
from index.scoring.ood import DEFAULT_SCORER, SCORERS, TPR_TARGET, Labels, Scorer, calibrate, make_scorer
from index.scoring.prototypes import Prototypes
from index.vectors.checks import check_vectors

#: AUROC by which a scorer must beat the default to replace it (validation sets of held-out
#: species are small: a few hundredths is within their noise).
CHOICE_MARGIN = 0.01


@dataclass(frozen=True)
class ScorerChoice:
    """The decision scorer, its threshold, and what every scorer measured on validation."""

    scorer: str  # the chosen scorer's name (a key of index.scoring.ood.SCORERS)
    threshold: float  # its score threshold: below = unknown (accepts tpr of known validation crops)
    tpr: float
    source: str  # "held-out validation" (chosen by AUROC) or "default" (no held-out crops)
    default: str  # the measured default it was compared with
    n_known_val: int
    n_unknown_val: int
    per_scorer: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> auroc, fpr95, threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_scorer(
    train_vectors: np.ndarray,
    train_labels: Labels,
    known_val: np.ndarray,
    unknown_val: np.ndarray | None = None,
    *,
    prototypes: Prototypes | None = None,
    scorers: Sequence[str] = tuple(SCORERS),
    default: str = DEFAULT_SCORER,
    tpr: float = TPR_TARGET,
    margin: float = CHOICE_MARGIN,
    fitted: Mapping[str, Scorer] | None = None,
) -> ScorerChoice:
    """Pick the decision scorer by validation AUROC on held-out species, else the default.

    Args:
        train_vectors: (n, d) float32 training embeddings, train_labels: (n,) class names.
        known_val: (a, d) float32 validation embeddings of training classes (sets thresholds).
        unknown_val: (b, d) float32 validation embeddings of held-out species, or None / empty.
        prototypes: the catalog's prototypes (else class means of the training vectors).
        fitted: scorers already fitted on these training vectors (name -> scorer), reused
            instead of fitting them again.
    Raises:
        InvalidInput: no known validation vectors, an unknown scorer name, default not among scorers.
    """
    from index.metrics.classification import ood_metrics  # choosing only (sklearn): loading a stored choice skips it

    if default not in scorers:
        raise InvalidInput(f"default scorer {default!r} is not among the candidates {list(scorers)}")
    check_vectors(known_val, train_vectors.shape[1], name="known_val")
    if known_val.shape[0] == 0:
        raise InvalidInput("choosing a scorer needs known validation vectors")
    has_unknown = unknown_val is not None and len(unknown_val) > 0
    if has_unknown:
        check_vectors(unknown_val, train_vectors.shape[1], name="unknown_val")
    candidates = list(scorers) if has_unknown else [default]
    per: dict[str, dict[str, float]] = {}
    for name in candidates:
        scorer = (fitted or {}).get(name) or make_scorer(name).fit(train_vectors, train_labels, prototypes=prototypes)
        known = scorer.score(known_val)
        threshold = calibrate(known, tpr)
        per[name] = {"threshold": threshold}
        if has_unknown:
            report = ood_metrics(known, scorer.score(unknown_val), threshold)
            per[name].update(
                auroc=report.auroc,
                fpr95=report.fpr_at_95_tpr,
                known_kept=report.known_accuracy,
                unknown_flagged=report.unknown_accuracy,
            )
    chosen = default
    if has_unknown:
        best = max(candidates, key=lambda n: per[n]["auroc"])
        if per[best]["auroc"] > per[default]["auroc"] + margin:
            chosen = best
    return ScorerChoice(
        scorer=chosen,
        threshold=per[chosen]["threshold"],
        tpr=tpr,
        source="held-out validation" if has_unknown else "default",
        default=default,
        n_known_val=int(known_val.shape[0]),
        n_unknown_val=int(len(unknown_val)) if has_unknown else 0,
        per_scorer=per,
    )
