"""A Label Studio project's label config (XML) -> what oceanid can predict for it.

Parsed with the standard library's XML parser (expat refuses entity-expansion bombs).
oceanid predicts for ``<Choices>`` on an ``<Image>`` (one species per image) and for
``<RectangleLabels>`` on an ``<Image>`` (every organism of a whole frame). Each label may name
the oceanid species it stands for with ``predicted_values="Genus species,other name"``
(Label Studio's own attribute for that); otherwise its ``value`` is the species name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from index.errors import InvalidInput

KINDS = {"choices": "choice", "rectanglelabels": "label"}  # control tag -> its option tag (lower case)
DEFAULT_FALLBACK = "Unknown"


@dataclass(frozen=True)
class Control:
    """One control oceanid fills: its name, its kind, the ``<Image>`` it labels and its labels."""

    name: str
    kind: str  # choices | rectanglelabels
    to_name: str
    labels: tuple[str, ...]  # the label values, in config order
    species: tuple[tuple[str, str], ...]  # (oceanid species, label value) pairs from predicted_values / value

    def label_for(self, species: str) -> str | None:
        """The config's label for an oceanid species (case-insensitive), else None."""
        wanted = species.strip().casefold()
        return next((label for name, label in self.species if name.casefold() == wanted), None)

    def fallback(self, name: str = DEFAULT_FALLBACK) -> str | None:
        """The label that stands for "unknown" (``name``, case-insensitive), else None."""
        return next((label for label in self.labels if label.casefold() == name.strip().casefold()), None)


@dataclass(frozen=True)
class LabelConfig:
    """The controls oceanid fills and the ``<Image>`` tags they label (name -> task data key)."""

    images: tuple[tuple[str, str], ...]  # (Image name, the task data key its value names)
    controls: tuple[Control, ...]

    def image_key(self, image_name: str) -> str | None:
        return dict(self.images).get(image_name)


def parse_label_config(xml: str | None) -> LabelConfig:
    """The controls of ``xml`` that label an ``<Image>``. Raises InvalidInput with one line:
    no config, XML that does not parse, no ``<Image>``, or no ``<Choices>`` / ``<RectangleLabels>`` on one."""
    if not xml or not xml.strip():
        raise InvalidInput("the project has no label config")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InvalidInput(f"the label config is not valid XML ({exc})") from None
    images = tuple(
        (el.get("name", ""), el.get("value", "").lstrip("$"))
        for el in root.iter()
        if el.tag.lower() == "image" and el.get("name") and el.get("value")
    )
    if not images:
        raise InvalidInput("the label config has no <Image name=... value=$...> tag: oceanid predicts for images")
    names = {n for n, _ in images}
    controls = []
    for el in root.iter():
        kind = el.tag.lower()
        if kind not in KINDS or el.get("toName") not in names or not el.get("name"):
            continue
        labels, species = [], []
        for option in el.iter():
            if option.tag.lower() != KINDS[kind] or option.get("value") is None:
                continue
            value = option.get("value")
            labels.append(value)
            mapped = [v.strip() for v in (option.get("predicted_values") or "").split(",") if v.strip()]
            species += [(name, value) for name in (mapped or [value])]
        controls.append(Control(el.get("name"), kind, el.get("toName"), tuple(labels), tuple(species)))
    if not controls:
        raise InvalidInput(
            "the label config has no <Choices> or <RectangleLabels> on its <Image>: oceanid fills those two"
        )
    return LabelConfig(images, tuple(controls))
