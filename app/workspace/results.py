"""What crosses the Workspace boundary: dataclasses with ``to_dict()`` (what ``--json`` prints).

The faces read these by attribute; ``to_dict()`` is their JSON form, and
``EvaluationSummary.from_dict`` reads back the ``eval.json`` a report folder holds.
Nothing heavy is imported here, so the CLI starts fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from index.calibration import Calibration
    from index.generations import Manifest
    from index.ood_choice import ScorerChoice
    from index.taxonomy import TaxonAnswer


@dataclass(frozen=True)
class BuildResult:
    """What ``index build`` / ``rebuild`` did."""

    generation: str  # the live generation afterwards
    built: bool  # False: the live generation was up to date and nothing was written
    manifest: Manifest
    prototypes_refit: bool = False  # the trained prototypes changed and were rewritten

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "built": self.built, "prototypes_refit": self.prototypes_refit,
                **self.manifest.to_dict()}


@dataclass(frozen=True)
class VerifyResult:
    """A generation checked against its manifest (files, sha256, count, model)."""

    generation: str
    ok: bool
    manifest: Manifest

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "ok": self.ok, **self.manifest.to_dict()}


@dataclass(frozen=True)
class GenerationChange:
    """What ``index prune`` / ``index rollback`` did."""

    model_id: str
    current: str | None  # the live generation afterwards
    removed: tuple[str, ...] = ()  # generations (and dead temp entries) deleted

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "current": self.current, "removed": list(self.removed)}


@dataclass(frozen=True)
class SpeciesChange:
    """A species added from a few examples, or removed again."""

    species: str
    action: str  # "added" | "removed"
    generation: str  # the live index generation afterwards
    examples: int = 0  # examples embedded (added)
    removed_vectors: int = 0  # vectors taken out of the index (removed)
    skipped: tuple[tuple[str, str], ...] = ()  # (item, one-line reason) for unreadable examples
    # (concept, rank, name the catalog keeps, name given) where the given taxonomy differed
    taxonomy_kept: tuple[tuple[str, str, str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"species": self.species, "action": self.action, "generation": self.generation,
                "examples": self.examples, "removed_vectors": self.removed_vectors,
                "skipped": [{"item": i, "reason": r} for i, r in self.skipped],
                "taxonomy_kept": [{"concept": c, "rank": r, "kept": k, "given": g}
                                  for c, r, k, g in self.taxonomy_kept]}


@dataclass(frozen=True)
class TaxaImport:
    """What ``oceanid taxa import`` did."""

    rows: int  # lineage rows read
    written: int  # taxa rows inserted or changed
    unknown: tuple[str, ...] = ()  # concepts named in the file that the catalog has no crop of (skipped)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "written": self.written, "unknown": list(self.unknown)}


@dataclass
class Identification:
    """The answer for one image: top species (or ``unknown``), every OOD score, or an error."""

    name: str  # file name, or "upload N"
    species: str | None = None  # top species, or "unknown"
    score: float | None = None  # cosine similarity to the top species' prototype (not a probability)
    probability: float | None = None  # calibrated probability of the top species (temperature-scaled cosines)
    unknown: bool = False
    unknown_score: float | None = None  # the deciding scorer's score (higher = more like a known species)
    unknown_threshold: float | None = None  # below it the crop is called unknown
    top: list[tuple[str, float]] = field(default_factory=list)  # (species, cosine similarity)
    probabilities: list[tuple[str, float]] = field(default_factory=list)  # (species, calibrated probability)
    ood: dict[str, dict] = field(default_factory=dict)  # scorer -> score, threshold, unknown
    scorer: str | None = None  # the scorer that decided "unknown"
    error: str | None = None  # one line when the image could not be read
    taxon: TaxonAnswer | None = None  # the deepest confident taxon and its lineage (``index.taxonomy``)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    """Nearest-prototype classification of the test split."""

    top1: float
    top5: float | None  # None (not applicable) with 5 trained species or fewer
    f1_macro: float
    f1_weighted: float
    precision_macro: float
    recall_macro: float
    per_class: dict[str, ClassFigures]


@dataclass(frozen=True)
class Retrieval:
    """Leave-one-out retrieval on the test split."""

    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    map_at_r: float
    queries: int


@dataclass(frozen=True)
class OodFigures:
    """Unknown-species detection by one scorer: known test crops vs held-out species."""

    auroc: float
    fpr95: float
    aupr: float  # unknown crops as positives
    aupr_in: float
    threshold: float
    known_accuracy: float
    unknown_accuracy: float


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
    ood: dict[str, OodFigures] = field(default_factory=dict)
    few_shot: dict[str, FewShot] = field(default_factory=dict)  # "shots_1", "shots_5"
    confusable: list[ConfusablePair] = field(default_factory=list)
    ood_decision_scorer: str | None = None  # the scorer Identify uses (None without held-out crops)
    report_dir: str | None = None  # the report folder, once written
    calibration: Calibration | None = None  # temperature fitted on val; ece_test on the known test crops
    scorer_choice: ScorerChoice | None = None  # how the decision scorer was chosen (per-scorer val AUROC)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationSummary:
        """Read back what :meth:`to_dict` wrote (``eval.json``)."""
        c = dict(data["classification"])
        c["per_class"] = {k: ClassFigures(**v) for k, v in c["per_class"].items()}
        few = {}
        for key, f in (data.get("few_shot") or {}).items():
            f = dict(f)
            f["species"] = {k: FewShotSpecies(**v) for k, v in f["species"].items()}
            few[key] = FewShot(**f)
        from index.calibration import Calibration
        from index.ood_choice import ScorerChoice

        return cls(
            model=data["model"], generation=data["generation"], counts=SplitCounts(**data["counts"]),
            classification=Classification(**c), retrieval=Retrieval(**data["retrieval"]),
            ood={k: OodFigures(**v) for k, v in (data.get("ood") or {}).items()}, few_shot=few,
            confusable=[ConfusablePair(**p) for p in data.get("confusable") or []],
            ood_decision_scorer=data.get("ood_decision_scorer"), report_dir=data.get("report_dir"),
            calibration=Calibration(**data["calibration"]) if data.get("calibration") else None,
            scorer_choice=ScorerChoice(**data["scorer_choice"]) if data.get("scorer_choice") else None,
        )


@dataclass(frozen=True)
class DemoAdded:
    """The demo's last step: a held-out species added from a few examples."""

    species: str
    examples: int
    identified_before: int  # of ``queries`` other crops of it named as it before adding
    identified_after: int
    queries: int
    top_species_after: int = 0  # of ``queries``, how many have it as the top species after adding


@dataclass(frozen=True)
class DemoResult:
    """What ``oceanid demo`` did."""

    evaluation: EvaluationSummary
    added: DemoAdded | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"evaluation": self.evaluation.to_dict(), "added": asdict(self.added) if self.added else {},
                "seconds": self.seconds}
