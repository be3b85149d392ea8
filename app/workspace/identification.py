"""The answer for one image (:class:`Identification`) and its parts: what identify, the cascade and the
HTTP API return. ``IdentificationRecord`` declares its JSON form (``to_dict()``, ``--json``, the API's
schema). Nothing heavy is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from typing_extensions import TypedDict  # pydantic (the API schema) needs it on Python < 3.12

if TYPE_CHECKING:
    from index.taxonomy import TaxonAnswer


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

    @property
    def accepted_as_added(self) -> bool:
        """Named although the deciding score is under its threshold: the trained-species decision said
        "not a trained species" and an added species' few-shot scorer accepted the crop (the two-space
        rule's second stage, app/workspace/spaces.py)."""
        v = self.verdict
        return bool(v is not None and not self.error and not self.unknown and v.score < v.threshold)

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
