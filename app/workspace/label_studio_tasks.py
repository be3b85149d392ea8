"""A discovery run as Label Studio tasks, each pre-annotated with its cluster's suggested name.

One task per clustered crop, in Label Studio's import format (a JSON list; ``POST
/api/projects/ID/import`` or the Import dialog)::

    {"data": {"image": "/data/local-files/?d=home/crops/ab/12.png", "discovery": 3, "cluster": 12,
              "number": 1, "distance": 0.04, "exemplar": true, "crop_id": 88},
     "predictions": [{"model_version": "discovery-3 (tiny@gen-0002)", "score": 0.8,
                      "result": [{"from_name": "species", "to_name": "image", "type": "choices",
                                  "value": {"choices": ["Amphiprion"]}}]}]}

Images are referenced the way Label Studio's local-files storage serves them (``/data/local-files/?d=``
+ the path under its ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``, ``root`` here): the reference the ML
backend already fetches from Label Studio with its token (app/api/label_studio/fetch.py), so the same
project can ask oceanid for predictions too. The suggested name is the one ``discover export --csv``
writes: the species a cluster was named, else the taxon its members are placed at; a cluster with
neither gets tasks without a prediction. The label config the tasks fit (the README's ``<Choices>``
config, one choice per suggested name plus ``Unknown``) comes with them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from index.errors import InvalidInput

if TYPE_CHECKING:
    from index.catalog.discoveries import Cluster, Discovery

LOCAL_FILES = "/data/local-files/?d="  # Label Studio's local-files storage URL (io_storages/localfiles)
IMAGE, CONTROL, FALLBACK = "image", "species", "Unknown"  # the README's <Choices> config names


@dataclass(frozen=True)
class LabelStudioTasks:
    """The tasks of one discovery run and the label config they fit."""

    discovery_id: int
    model_version: str
    tasks: tuple[dict[str, Any], ...]
    label_config: str
    root: str  # the folder the image paths are relative to (Label Studio's local-files document root)

    @property
    def predicted(self) -> int:
        return sum(1 for t in self.tasks if t.get("predictions"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "discovery": self.discovery_id,
            "model_version": self.model_version,
            "tasks": len(self.tasks),
            "predicted": self.predicted,
            "root": self.root,
            "label_config": self.label_config,
        }


def suggested_name(cluster: Cluster) -> str | None:
    """The name offered for review: the species the cluster was named last, else its members' taxon."""
    return cluster.names[-1].species if cluster.names else (cluster.facts.taxon or None)


def local_files_url(path: str | Path, root: str | Path) -> str:
    """``/data/local-files/?d=<path under root>``. Raises InvalidInput when ``path`` is not under ``root``."""
    path, root = Path(path).resolve(), Path(root).resolve()
    try:
        relative = path.relative_to(root)
    except ValueError:
        raise InvalidInput(
            f"{path} is not under {root}: give --label-studio-root the folder Label Studio serves local files "
            "from (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)"
        ) from None
    return LOCAL_FILES + quote(relative.as_posix())


def choices_config(names: list[str]) -> str:
    """The ``<Choices>`` label config with one choice per name, then ``Unknown`` (XML-escaped)."""
    view = ET.Element("View")
    ET.SubElement(view, "Image", name=IMAGE, value=f"${IMAGE}")
    control = ET.SubElement(view, "Choices", name=CONTROL, toName=IMAGE, choice="single")
    for name in [*names, FALLBACK]:
        ET.SubElement(control, "Choice", value=name)
    return ET.tostring(view, encoding="unicode")


def discovery_tasks(run: Discovery, root: str | Path = "/") -> LabelStudioTasks:
    """Every clustered crop of ``run`` as a Label Studio task (members nearest the centre first)."""
    version = f"discovery-{run.id} ({run.model_id}@{run.generation or 'none'})"
    tasks, names = [], []
    for cluster in run.clusters:
        name = suggested_name(cluster)
        if name and name not in names and name != FALLBACK:
            names.append(name)
        score = cluster.facts.taxon_share if not cluster.names else None
        for m in cluster.members:
            if not m.path:
                continue
            data: dict[str, Any] = {
                IMAGE: local_files_url(m.path, root),
                "discovery": run.id,
                "cluster": cluster.id,
                "number": cluster.number,
                "distance": round(float(m.distance), 6),
                "exemplar": bool(m.exemplar),
            }
            if m.crop_id is not None:
                data["crop_id"] = int(m.crop_id)
            task: dict[str, Any] = {"data": data}
            if name:
                region = {"from_name": CONTROL, "to_name": IMAGE, "type": "choices", "value": {"choices": [name]}}
                prediction: dict[str, Any] = {"model_version": version, "result": [region]}
                if score is not None:
                    prediction["score"] = round(float(score), 4)
                task["predictions"] = [prediction]
            tasks.append(task)
    return LabelStudioTasks(run.id, version, tuple(tasks), choices_config(names), str(Path(root).resolve()))
