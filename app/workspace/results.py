"""The evaluation summary: every figure of ``oceanid evaluate`` (``eval.json`` is its ``to_dict()``).

Made by :mod:`app.workspace.evaluation`; ``EvaluationSummary.from_dict`` (a pydantic ``TypeAdapter``) reads
back the ``eval.json`` a report folder holds. The other results live with the step that makes them (``indexes``,
``identification``, ``species``, ``taxa``, ``demo``, ``frames``, ``browse``), each re-exported by
``app.workspace``. Nothing heavy is imported here, so the CLI starts fast.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from app.workspace.frames.figures import CascadeFigures, DetectionFigures  # noqa: F401 - EvaluationSummary holds them

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from app.workspace.counting import CountError
    from index.metrics.classification import OodReport
    from index.scoring.calibration import Calibration
    from index.scoring.ood_choice import ScorerChoice


# -- the evaluation summary -------------------------------------------------------------


@dataclass(frozen=True)
class SplitCounts:
    train: int
    val: int
    test: int  # test crops of trained species
    holdout: int
    species: int  # trained species
    held_out_species: list[str]


@dataclass(frozen=True)
class ClassFigures:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Classification:
    """Nearest-prototype classification of the test split (answers with the stored class priors)."""

    top1: float  # strict: the answer is the label
    top5: float | None  # None (not applicable) with 5 trained species or fewer
    f1_macro: float
    f1_weighted: float
    precision_macro: float
    recall_macro: float
    per_class: dict[str, ClassFigures]
    # the answer is the label or inside its subtree in the catalog's lineages (index.metrics.label_rank);
    # None in an eval.json from before it was measured
    top1_at_label_rank: float | None = None
    # where the answers went: exact / subtree (more specific than the label) / ancestor / error, in all and
    # per labelled class, and the subtree answers given per label (LabelRankReport.to_dict())
    label_rank: dict[str, Any] | None = None
    priors: dict[str, Any] | None = None  # the class priors answered with (source, tau); None: equal priors


@dataclass(frozen=True)
class Retrieval:
    """Leave-one-out retrieval on the test split."""

    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    map_at_r: float
    queries: int


@dataclass(frozen=True)
class FewShotSpecies:
    recall: float  # of the species' other crops, once added
    known_accuracy: float  # test top-1 of the known species after adding it
    known_accuracy_change: float


@dataclass(frozen=True)
class FewShot:
    """Held-out species added (in memory) from k examples each."""

    recall: float
    known_accuracy_change: float
    known_accuracy_before: float
    species: dict[str, FewShotSpecies]


@dataclass(frozen=True)
class HeldOutPlacement:
    """Where the crops of held-out (never trained) species land in the tree, for one decoding."""

    crops: int
    flagged_new: float  # share flagged "not a known species"
    # share flagged new AND answered in (or below) their true genus, over the crops whose genus has a
    # trained species (None: none has, so no answer could name it)
    genus: float | None
    family: float | None  # the same for their true family

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TaxonomyDecoding:
    """The taxonomy figures of one decoding (probable | distance) of the answers."""

    decode: str
    mean_distance: float  # known test crops, FathomNet 2025 distance (0..12) from truth to answer
    rank_accuracy: dict[str, float | None]  # rank -> share of known test crops whose answer names their taxon there
    answered_ranks: dict[str, int]  # rank of the answers on known test crops -> crops ("none": nothing named)
    held_out: HeldOutPlacement | None = None  # every held-out crop graded
    held_out_species: dict[str, HeldOutPlacement] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TaxonomyFigures:
    """Taxonomy-aware evaluation (``index.metrics.ranks``): both decodings compared."""

    rank_threshold: float  # the stored decision's (probable decoding)
    threshold_source: str  # validation | default
    species_rank_accuracy: dict[str, float | None]  # the top-1 species' lineage, rank by rank
    species_mean_distance: float  # the top-1 species as the answer
    decodings: dict[str, TaxonomyDecoding]  # "probable", "distance"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConfusablePair:
    a: str
    b: str
    similarity: float  # cosine of their closest prototypes


@dataclass
class EvaluationSummary:
    """Every figure of ``oceanid evaluate`` (``eval.json`` is its ``to_dict()``)."""

    model: str
    generation: str
    counts: SplitCounts
    classification: Classification
    retrieval: Retrieval
    ood: dict[str, OodReport] = field(default_factory=dict)  # scorer -> known test crops vs held-out species
    few_shot: dict[int, FewShot] = field(default_factory=dict)  # shots (1, 5) -> species added from that many
    confusable: list[ConfusablePair] = field(default_factory=list)
    ood_decision_scorer: str | None = None  # the scorer Identify uses (None without held-out crops)
    report_dir: str | None = None  # the report folder, once written
    calibration: Calibration | None = None  # temperature fitted on val; ece_test on the known test crops
    scorer_choice: ScorerChoice | None = None  # how the decision scorer was chosen (per-scorer val AUROC)
    model_stale: str | None = None  # why the model was stale when graded (re-split with --force); None: it was not
    taxonomy: TaxonomyFigures | None = None  # rank accuracy, taxonomic distance, held-out placement
    detection: DetectionFigures | None = None  # whole frames through the cascade; None: the catalog lists no detector
    count_error: CountError | None = None  # raw vs adjusted counts of the known test crops (app.workspace.counting)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationSummary:
        """Read back what :meth:`to_dict` wrote (``eval.json``): the dataclasses (this one and every one it
        holds) rebuilt by a pydantic ``TypeAdapter`` over them; few-shot keys are JSON strings ('shots_N' in
        reports written before)."""
        few = {int(str(k).removeprefix("shots_")): v for k, v in (data.get("few_shot") or {}).items()}
        return summary_adapter().validate_python({**data, "few_shot": few})


@functools.cache
def summary_adapter() -> TypeAdapter:
    """The pydantic ``TypeAdapter`` of :class:`EvaluationSummary`, its annotations resolved against the
    result types it holds (imported on first use: they are not light)."""
    from pydantic import TypeAdapter

    from app.workspace.counting import CountError
    from index.metrics.classification import OodReport
    from index.scoring.calibration import Calibration
    from index.scoring.ood_choice import ScorerChoice

    adapter = TypeAdapter(EvaluationSummary)
    held = {"CountError": CountError, "OodReport": OodReport, "Calibration": Calibration, "ScorerChoice": ScorerChoice}
    adapter.rebuild(_types_namespace={**globals(), **held})
    return adapter
