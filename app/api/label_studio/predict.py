"""Tasks -> Label Studio predictions: fetch every task's image, identify them in batches, map
each answer to the project's labels.

Mapping rules (one place, :class:`Mapper`):

- a species the config has a label for -> that label, scored by its calibrated probability;
- "unknown" -> the fallback label (``Unknown`` unless configured) when the config has it, else
  nothing (no region: Label Studio shows an unlabelled task);
- a species oceanid knows that the config lacks -> the fallback label as well (or nothing),
  counted in the request's log line; labels oceanid does not know are never predicted;
- a near-duplicate of a crop a person labelled in Label Studio -> that person's label
  (``Workspace.annotation_recall``), scored by its cosine.

A task whose image cannot be fetched or decoded gets an empty prediction and one log line;
the batch goes on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from PIL import Image

from app.api.label_studio.config import Control, LabelConfig
from app.api.label_studio.fetch import ImageFetcher
from app.api.label_studio.protocol import Prediction, Region, Task
from app.workspace import Workspace
from index.errors import BadImage, InvalidInput, ModelError, NotFound, describe
from index.imaging import decode_bytes

log = logging.getLogger(__name__)


@dataclass
class Tally:
    """What one /predict did, for its log line."""

    tasks: int = 0
    predicted: int = 0  # tasks with at least one region
    failed: int = 0  # tasks whose image could not be fetched or decoded
    unknown: int = 0  # answers oceanid called unknown
    recalled: int = 0  # answers taken from a labelled near-duplicate
    missing: Counter = field(default_factory=Counter)  # species oceanid named that the config lacks

    def line(self, project: int | None, fallback: str) -> str:
        missing = ", ".join(f"{name} x{n}" for name, n in self.missing.most_common(5))
        more = f" (+{len(self.missing) - 5} more)" if len(self.missing) > 5 else ""
        return (
            f"label-studio predict project {project}: {self.tasks} tasks, {self.predicted} predicted, "
            f"{self.failed} images not read, {self.unknown} unknown, {self.recalled} from annotations, "
            f"{sum(self.missing.values())} species not in the config -> {fallback!r}"
            + (f" ({missing}{more})" if missing else "")
        )


@dataclass(frozen=True)
class Mapper:
    """An oceanid answer -> one of a control's labels (see the module rules)."""

    control: Control
    fallback: str

    def label(self, species: str | None, tally: Tally) -> str | None:
        if species is None or species == "unknown":
            tally.unknown += 1
            return self.control.fallback(self.fallback)
        label = self.control.label_for(species)
        if label is None:
            tally.missing[species] += 1
            return self.control.fallback(self.fallback)
        return label


def fetch_images(
    tasks: Sequence[Task], key: str, fetcher: ImageFetcher, threads: int, tally: Tally
) -> list[Image.Image | None]:
    """Each task's decoded image (None, with one log line, when it cannot be read)."""

    def one(task: Task) -> Image.Image | None:
        ref = task.image_ref(key)
        try:
            if not isinstance(ref, str):
                raise BadImage(f"task data has no {key!r} image URL")
            return decode_bytes(fetcher.fetch(ref), f"task {task.id}")
        except BadImage as exc:
            log.warning("label-studio task %s: no prediction, image not read: %s", task.id, exc)
            tally.failed += 1
            return None

    with ThreadPoolExecutor(max(1, min(threads, len(tasks)))) as pool:
        return list(pool.map(one, tasks))


def _pct(value: float, whole: int) -> float:
    return round(100.0 * value / whole, 4) if whole else 0.0


def choices_regions(
    ws: Workspace, control: Control, images: list[Image.Image], mapper: Mapper, tally: Tally, model: str | None
) -> list[list[Region]]:
    """One ``choices`` region (or none) per image."""
    vectors = ws.embed_images(images, model)
    answers = ws.identify(
        images, k=3, model=model, names=[f"task image {n}" for n in range(len(images))], vectors=vectors
    )
    recalled = ws.annotation_recall(vectors, model)
    out = []
    for answer, memory in zip(answers, recalled, strict=True):
        if memory is not None:
            tally.recalled += 1
            species, score = memory
        else:
            species, score = answer.species, answer.probability
        label = mapper.label(species, tally)
        out.append(
            []
            if label is None
            else [
                Region(
                    from_name=control.name,
                    to_name=control.to_name,
                    type="choices",
                    value={"choices": [label]},
                    score=None if score is None else round(float(score), 4),
                )
            ]
        )
    return out


def rectangle_regions(
    ws: Workspace, control: Control, images: list[Image.Image], mapper: Mapper, tally: Tally, model: str | None
) -> list[list[Region]]:
    """One ``rectanglelabels`` region per organism the cascade finds in each frame (percent boxes)."""
    result = ws.identify_frames(images, k=3, model=model, names=[f"task frame {n}" for n in range(len(images))])
    organisms = [(f, o) for f, frame in enumerate(result.frames) for o in frame.organisms]
    crops = [ws.cut_box(images[f], o.box) for f, o in organisms]
    recalled = ws.annotation_recall(crops, model)
    out: list[list[Region]] = [[] for _ in images]
    for (f, organism), memory in zip(organisms, recalled, strict=True):
        frame = result.frames[f]
        if memory is not None:
            tally.recalled += 1
            species, score = memory
        else:
            species, score = organism.species, organism.probability
        label = mapper.label(species, tally)
        if label is None:
            continue
        x, y, w, h = organism.box
        out[f].append(
            Region(
                id=f"oceanid-{f}-{len(out[f])}",
                from_name=control.name,
                to_name=control.to_name,
                type="rectanglelabels",
                original_width=frame.width,
                original_height=frame.height,
                image_rotation=0,
                value={
                    "x": _pct(x, frame.width),
                    "y": _pct(y, frame.height),
                    "width": _pct(w, frame.width),
                    "height": _pct(h, frame.height),
                    "rotation": 0,
                    "rectanglelabels": [label],
                },
                score=None if score is None else round(float(score), 4),
            )
        )
    return out


def predict_tasks(
    ws: Workspace,
    config: LabelConfig,
    tasks: Sequence[Task],
    fetcher: ImageFetcher,
    fallback: str,
    version: str,
    threads: int = 8,
    model: str | None = None,
) -> tuple[list[Prediction], Tally]:
    """One prediction per task, in task order (empty for a task whose image was not read)."""
    tally = Tally(tasks=len(tasks))
    regions: list[list[Region]] = [[] for _ in tasks]
    images_by_key: dict[str, list[Image.Image | None]] = {}
    for control in config.controls:
        key = config.image_key(control.to_name)
        if key not in images_by_key:
            images_by_key[key] = fetch_images(tasks, key, fetcher, threads, tally)
        images = images_by_key[key]
        where = [n for n, image in enumerate(images) if image is not None]
        if not where:
            continue
        make = choices_regions if control.kind == "choices" else rectangle_regions
        try:
            found = make(ws, control, [images[n] for n in where], Mapper(control, fallback), tally, model)
        except (NotFound, InvalidInput, ModelError) as exc:  # e.g. rectangles with no detector in the home
            log.warning("label-studio: no %s predictions for %s: %s", control.kind, control.name, describe(exc))
            continue
        for n, task_regions in zip(where, found, strict=True):
            regions[n] += task_regions
    predictions = []
    for task_regions in regions:
        scores = [r.score for r in task_regions if r.score is not None]
        predictions.append(
            Prediction(
                result=task_regions,
                score=round(sum(scores) / len(scores), 4) if scores else None,
                model_version=version,
            )
        )
    tally.predicted = sum(1 for r in regions if r)
    return predictions, tally
