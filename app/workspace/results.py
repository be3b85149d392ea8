"""What crosses the Workspace boundary: dataclasses with ``to_dict()`` (what ``--json`` prints).

The faces read these by attribute; ``to_dict()`` is their JSON form, and
``EvaluationSummary.from_dict`` reads back the ``eval.json`` a report folder holds.
Nothing heavy is imported here, so the CLI starts fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from typing_extensions import TypedDict  # pydantic (the API schema) needs it on Python < 3.12

from app.workspace.frames.figures import CascadeFigures, DetectionFigures  # noqa: F401 - EvaluationSummary holds them

if TYPE_CHECKING:
    from app.workspace.counting import CountError
    from index.metrics.classification import OodReport
    from index.scoring.calibration import Calibration
    from index.scoring.ood_choice import ScorerChoice
    from index.taxonomy import TaxonAnswer
    from index.vectors.generations import Manifest


@dataclass(frozen=True)
class BuildResult:
    """What ``index build`` / ``rebuild`` did."""

    generation: str  # the live generation afterwards
    built: bool  # False: the live generation was up to date and nothing was written
    manifest: Manifest
    prototypes_refit: bool = False  # the trained prototypes changed and were rewritten
    pruned: tuple[str, ...] = ()  # old generations deleted after the build (the newest few are kept)
    disagreed: str | None = None  # how the live generation disagreed with the catalog (then rebuilt)

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "built": self.built,
            "prototypes_refit": self.prototypes_refit,
            "pruned": list(self.pruned),
            "disagreed": self.disagreed,
            **self.manifest.to_dict(),
        }


@dataclass(frozen=True)
class ModelInfo:
    """One model of ``oceanid models``: what it is, whether commands use it, whether it is stale."""

    model_id: str
    backbone: str | None
    dim: int
    vectors: int  # crops embedded with it
    current: bool  # the model commands use without --model
    generation: str | None  # its live index generation
    stale: str | None = None  # why it no longer matches the catalog (re-split with --force); None: it does

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    warning: str | None = None  # rollback: the generation made live is out of date with the stored vectors

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "current": self.current,
            "removed": list(self.removed),
            "warning": self.warning,
        }


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
    warnings: tuple[str, ...] = ()  # one line each: examples that are crops of another species

    def to_dict(self) -> dict[str, Any]:
        return {
            "species": self.species,
            "action": self.action,
            "generation": self.generation,
            "examples": self.examples,
            "removed_vectors": self.removed_vectors,
            "warnings": list(self.warnings),
            "skipped": [{"item": i, "reason": r} for i, r in self.skipped],
            "taxonomy_kept": [{"concept": c, "rank": r, "kept": k, "given": g} for c, r, k, g in self.taxonomy_kept],
        }


@dataclass(frozen=True)
class TaxaImport:
    """What ``oceanid taxa import`` did."""

    rows: int  # lineage rows read
    written: int  # taxa rows inserted or changed
    unknown: tuple[str, ...] = ()  # concepts named in the file that the catalog has no crop of (skipped)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "written": self.written, "unknown": list(self.unknown)}


@dataclass(frozen=True)
class OodVerdict:
    """One OOD scorer's verdict on one crop: its score against its calibrated threshold."""

    score: float  # higher = more like a known species
    threshold: float  # below it the crop is called unknown
    unknown: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Neighbour:
    """One of the catalog crops nearest an identified crop: why the answer is what it is."""

    crop_id: int  # catalog crop id (``oceanid search --crop ID`` starts from it)
    similarity: float  # cosine to the identified crop
    species: str | None  # the crop's label (None: no longer in the catalog)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class IdentificationRecord(TypedDict):
    """What :meth:`Identification.to_dict` returns (``--json``, the CSV's source, the HTTP API's
    schema): the one declaration of the answer's JSON form."""

    name: str
    species: str | None  # the answer: a species, "unknown", or None for an unreadable image
    unknown: bool | None  # None for an unreadable image (an error row, never judged)
    closest: str | None  # the closest known species
    score: float | None  # cosine to the closest species' prototype
    probability: float | None  # calibrated probability of ``closest`` among the known species
    unknown_score: float | None
    unknown_threshold: float | None
    scorer: str | None
    top: list[tuple[str, float]]
    probabilities: list[tuple[str, float]]
    ood: dict[str, OodVerdictRecord]
    error: str | None
    warning: str | None
    source: str | None
    box: list[float] | None  # (x, y, w, h) of the crop in ``source``
    detection_score: float | None  # the detector's score of a box found in a whole frame (--frames / --boxes)
    model: str | None
    generation: str | None
    taxon: TaxonRecord | None  # the deepest confident taxon (``index.taxonomy.TaxonAnswer.to_dict``)
    neighbours: list[dict[str, Any]]  # the nearest catalog crops (``Neighbour.to_dict``), best first
    named_by: str | None  # the vector space that named it: tuned | general | fused ("" when unknown)
    unknown_by: str | None  # the space(s) that decided "unknown": tuned | tuned+general ("" when named)


class TaxonRecord(TypedDict):
    name: str | None
    rank: str | None
    probability: float
    lineage: dict[str, str]
    decode: str
    expected_distance: float | None
    basis: str  # "known species", or "held-out species" for an unknown crop's placement


class OodVerdictRecord(TypedDict):
    score: float
    threshold: float
    unknown: bool


@dataclass(frozen=True)
class Identification:
    """The answer for one image: top species (or ``unknown``), every OOD verdict, or an error.

    Built once, complete (by :meth:`answered` or :meth:`failed`); what follows from the
    fields (species, unknown, the deciding score) is derived, so it can never disagree
    with them. ``to_dict()`` (what ``--json`` and the HTTP API print) holds both.
    """

    name: str  # file name, or "upload N"
    top: tuple[tuple[str, float], ...] = ()  # (species, cosine similarity to its prototype), best first
    probabilities: tuple[tuple[str, float], ...] = ()  # (species, calibrated probability among known species)
    ood: Mapping[str, OodVerdict] = field(default_factory=dict)  # scorer -> verdict
    scorer: str | None = None  # the scorer that decides "unknown"
    error: str | None = None  # one line when the image could not be read
    warning: str | None = None  # one line when the answer is doubtful (a tiny image)
    source: str | None = None  # where the crop came from (the file given), so results can be traced
    box: tuple[float, float, float, float] | None = None  # (x, y, w, h) of the crop in ``source``: the whole
    # image, or the box found in a whole frame (clipped to it)
    detection_score: float | None = None  # the detector's (or the --boxes file's) score of that box
    model: str | None = None  # the model that answered
    generation: str | None = None  # the live index generation when it answered
    named: str | None = None  # the species named when not unknown, where it is not the closest
    # prototype's (a crop nearest an added species that its few-shot scorer rejects is judged
    # as a known-species crop: the nearest trained species)
    taxon: TaxonAnswer | None = None  # the deepest confident taxon and its lineage (``index.taxonomy``)
    neighbours: tuple[Neighbour, ...] = ()  # the nearest catalog crops behind the answer (``--neighbours``)
    named_by: str | None = None  # the vector space that named it (app/workspace/spaces.py); "" when unknown
    unknown_by: str | None = None  # the space(s) that decided "unknown"; "" when named

    @classmethod
    def answered(
        cls,
        name: str,
        top: Sequence[tuple[str, float]],
        probabilities: Sequence[tuple[str, float]],
        ood: Mapping[str, OodVerdict],
        scorer: str,
        **trace: Any,
    ) -> Identification:
        """A complete answer; ``scorer`` must be one of ``ood``'s (ValueError otherwise)."""
        if scorer not in ood:
            raise ValueError(f"the deciding scorer {scorer!r} has no verdict (have {', '.join(ood)})")
        return cls(
            name,
            tuple((s, float(v)) for s, v in top),
            tuple((s, float(v)) for s, v in probabilities),
            dict(ood),
            scorer,
            **trace,
        )

    @classmethod
    def failed(cls, name: str, error: str, **trace: Any) -> Identification:
        """An image that could not be read."""
        return cls(name, error=error, **trace)

    @property
    def verdict(self) -> OodVerdict | None:
        """The deciding scorer's verdict (None for an unreadable image)."""
        return self.ood.get(self.scorer) if self.scorer else None

    @property
    def unknown(self) -> bool:
        return bool(self.verdict and self.verdict.unknown)

    @property
    def closest(self) -> str | None:
        """The closest known species (the answer unless the crop is unknown)."""
        return self.top[0][0] if self.top else None

    @property
    def species(self) -> str | None:
        """The answer: the closest species, or ``"unknown"``; None for an unreadable image."""
        if self.error or not self.top:
            return None
        return "unknown" if self.unknown else (self.named or self.top[0][0])

    @property
    def score(self) -> float | None:
        """Cosine similarity to the closest species' prototype (not a probability)."""
        return self.top[0][1] if self.top else None

    @property
    def probability(self) -> float | None:
        """Calibrated probability of the closest species *among the known species* (temperature-
        scaled cosines): when the crop is unknown it is not the answer's probability."""
        return self.probabilities[0][1] if self.probabilities else None

    @property
    def unknown_score(self) -> float | None:
        return self.verdict.score if self.verdict else None

    @property
    def unknown_threshold(self) -> float | None:
        return self.verdict.threshold if self.verdict else None

    def to_dict(self) -> IdentificationRecord:
        return {
            "name": self.name,
            "species": self.species,
            "unknown": None if self.error else self.unknown,
            "closest": self.closest,
            "score": self.score,
            "probability": self.probability,
            "unknown_score": self.unknown_score,
            "unknown_threshold": self.unknown_threshold,
            "scorer": self.scorer,
            "top": [list(t) for t in self.top],
            "probabilities": [list(p) for p in self.probabilities],
            "ood": {name: v.to_dict() for name, v in self.ood.items()},
            "error": self.error,
            "warning": self.warning,
            "source": self.source,
            "box": list(self.box) if self.box else None,
            "detection_score": self.detection_score,
            "model": self.model,
            "generation": self.generation,
            "taxon": self.taxon.to_dict() if self.taxon else None,
            "named_by": self.named_by,
            "unknown_by": self.unknown_by,
            "neighbours": [n.to_dict() for n in self.neighbours],
        }


@dataclass(frozen=True)
class Relative:
    """A concept of the catalog near another in the tree."""

    name: str
    rank: str | None
    distance: int  # taxonomic distance (FathomNet 2025, 0..12)
    shared: str | None  # the deepest standard-rank taxon both lie under (None: none named)
    shared_rank: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TreePlace:
    """A taxon's place in the tree: its lineage and its nearest relatives among the concepts with crops."""

    name: str
    rank: str | None
    lineage: dict[str, str]  # rank -> name, top down (ranks outside the 7 included)
    relatives: tuple[Relative, ...] = ()  # nearest first

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rank": self.rank,
            "lineage": dict(self.lineage),
            "relatives": [r.to_dict() for r in self.relatives],
        }


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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaxonomyFigures:
        def placement(p):
            return HeldOutPlacement(**p) if p else None

        decodings = {
            k: TaxonomyDecoding(
                v["decode"],
                v["mean_distance"],
                v["rank_accuracy"],
                v["answered_ranks"],
                placement(v.get("held_out")),
                {s: placement(p) for s, p in (v.get("held_out_species") or {}).items()},
            )
            for k, v in d["decodings"].items()
        }
        return cls(
            d["rank_threshold"],
            d["threshold_source"],
            d["species_rank_accuracy"],
            d["species_mean_distance"],
            decodings,
        )


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
        """Read back what :meth:`to_dict` wrote (``eval.json``)."""
        c = dict(data["classification"])
        c["per_class"] = {k: ClassFigures(**v) for k, v in c["per_class"].items()}
        few = {}
        for key, f in (data.get("few_shot") or {}).items():
            f = dict(f)
            f["species"] = {k: FewShotSpecies(**v) for k, v in f["species"].items()}
            few[int(str(key).removeprefix("shots_"))] = FewShot(**f)  # JSON keys are strings ("shots_N" before)
        from index.metrics.classification import OodReport
        from index.scoring.calibration import Calibration
        from index.scoring.ood_choice import ScorerChoice

        return cls(
            model=data["model"],
            generation=data["generation"],
            counts=SplitCounts(**data["counts"]),
            classification=Classification(**c),
            retrieval=Retrieval(**data["retrieval"]),
            ood={k: OodReport(**v) for k, v in (data.get("ood") or {}).items()},
            few_shot=few,
            confusable=[ConfusablePair(**p) for p in data.get("confusable") or []],
            ood_decision_scorer=data.get("ood_decision_scorer"),
            report_dir=data.get("report_dir"),
            calibration=Calibration(**data["calibration"]) if data.get("calibration") else None,
            scorer_choice=ScorerChoice(**data["scorer_choice"]) if data.get("scorer_choice") else None,
            model_stale=data.get("model_stale"),
            taxonomy=TaxonomyFigures.from_dict(data["taxonomy"]) if data.get("taxonomy") else None,
            detection=DetectionFigures.from_dict(data["detection"]) if data.get("detection") else None,
            count_error=_count_error(data.get("count_error")),
        )


def _count_error(data: dict[str, Any] | None) -> CountError | None:
    from app.workspace.counting import CountError

    return CountError.from_dict(data) if data else None


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
class DemoFrames:
    """The demo's whole-frame step: a few held-out frames through the cascade."""

    detector: str
    detector_seconds: float  # training time (0 when reused)
    frames: int
    organisms: int  # boxes found and identified
    truth_organisms: int  # ground-truth organisms in those frames
    found: int  # of them, matched by a box at IoU >= 0.5
    named: int  # of the found, named right (held-out species: flagged unknown)


@dataclass(frozen=True)
class DemoResult:
    """What ``oceanid demo`` did."""

    evaluation: EvaluationSummary
    added: DemoAdded | None
    seconds: float
    frames: DemoFrames | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluation": self.evaluation.to_dict(),
            "added": asdict(self.added) if self.added else {},
            "seconds": self.seconds,
            "frames": asdict(self.frames) if self.frames else {},
        }
