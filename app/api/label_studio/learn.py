"""A Label Studio annotation -> the ToolAnnotation the Workspace stores as truth crops.

``<Choices>`` regions label the whole image; ``<RectangleLabels>`` regions are percent boxes
(Label Studio's format) turned into pixels on the decoded image. A label stands for the
oceanid species its ``predicted_values`` names (else its own value); the fallback label
("Unknown") teaches nothing and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.api.label_studio.config import LabelConfig
from app.api.label_studio.protocol import WebhookRequest
from app.workspace import ToolAnnotation, ToolBox
from index.errors import InvalidInput
from index.imaging import decode_bytes


@dataclass(frozen=True)
class LabelledRegion:
    """One region of an annotation: the species, a percent box (x, y, w, h) or None (whole image)."""

    species: str
    percent: tuple[float, float, float, float] | None
    region: str | None


def _species(config: LabelConfig, control_name: str, label: str) -> str:
    control = next(c for c in config.controls if c.name == control_name)
    return next((name for name, value in control.species if value == label), label)


def annotation_boxes(
    config: LabelConfig, result: list[dict[str, Any]], fallback: str
) -> tuple[list[LabelledRegion], str | None]:
    """The regions of ``result`` oceanid learns from, and the task data key of their image."""
    controls = {c.name: c for c in config.controls}
    regions, key = [], None
    for item in result:
        control = controls.get(item.get("from_name"))
        value = item.get("value") or {}
        if control is None or item.get("type", control.kind) != control.kind:
            continue
        labels = value.get(control.kind) or []
        if not labels or not isinstance(labels[0], str) or labels[0].casefold() == fallback.casefold():
            continue
        species = _species(config, control.name, labels[0])
        if control.kind == "rectanglelabels":
            try:
                box = tuple(float(value[k]) for k in ("x", "y", "width", "height"))
            except (KeyError, TypeError, ValueError):
                raise InvalidInput(f"region {item.get('id')} has no x, y, width, height") from None
            regions.append(LabelledRegion(species, box, item.get("id")))
        else:
            regions.append(LabelledRegion(species, None, item.get("id")))
        key = key or config.image_key(control.to_name)
    return regions, key


def learn_label(
    project: int, task: int, annotation: int, data: bytes, regions: list[LabelledRegion], url: str | None = None
) -> ToolAnnotation:
    """The annotation with pixel boxes on the decoded image. Raises BadImage."""
    image = decode_bytes(data, f"task {task}")
    boxes = []
    for r in regions:
        box = None
        if r.percent is not None:
            x, y, w, h = r.percent
            box = (x * image.width / 100, y * image.height / 100, w * image.width / 100, h * image.height / 100)
        boxes.append(ToolBox(r.species, box, r.region))
    return ToolAnnotation(project, task, annotation, data, tuple(boxes), url=url)


def deleted_ids(body: WebhookRequest) -> list[int]:
    """The annotation ids a delete event names (``annotation`` or ``annotations``)."""
    items = [*([body.annotation] if body.annotation is not None else []), *body.annotations]
    return sorted({a.id for a in items if a.id is not None})
