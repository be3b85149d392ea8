"""Learning from an annotation tool without retraining: an accepted annotation becomes truth crops.

::

    ToolAnnotation (image bytes + boxes, keyed by project/task/annotation ids)
      store   -> index.ingest.ingest (source ``label-studio``: one image row, one truth crop per box)
              -> the live query encoder -> index.catalog.embeddings (their vectors)
              -> ToolSteps.build (a new generation holding them: the next query sees them)
              -> ToolSteps.add_species, once a species the model does not know has ``min_examples`` crops
      forget  -> index.ingest.retract (the rows, files and vectors) -> a new generation
              -> ToolSteps.remove_species, when a species added that way falls under ``min_examples``
      recall  the nearest stored crop of the tool: a near-duplicate (cosine >= ``RECALL_SIMILARITY``)
              names what the person said it is, so a corrected label changes the next answer
      tag     a short digest of the tool's recallable crops (ids + labels of those with a vector): part
              of the model version the ML backend reports, so Label Studio, which predicts a task
              again only for a model version it holds no prediction of, asks again after a correction

Storing is idempotent on the ids: the same annotation sent twice changes nothing; an edited one
replaces its crops. The crops get no split: ``oceanid split`` + ``oceanid train`` learn from them
later (training is a CLI step). The steps take the pieces they use: the catalog, the home, the
crop config and :class:`ToolSteps` (the workspace's own steps for one model), never the Workspace.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.catalog.catalog import Catalog
from index.errors import InvalidInput
from index.home import Home
from index.imaging import decode_bytes
from index.ingest.crops import CropConfig
from index.ingest.ingest import FULL_FRAME, ingest_records
from index.ingest.retract import concept_crops, image_boxes, retract_image, source_ids, source_ids_like
from index.records import BoxRecord, ImageRecord

if TYPE_CHECKING:
    from PIL import Image

    from app.workspace.engine import Engine

log = logging.getLogger(__name__)

SOURCE = "label-studio"  # the catalog source of crops drawn in Label Studio
MIN_EXAMPLES = 5  # crops of a species the model does not know before it is added: the shot count `species add`
# was measured at (bench/RESULTS.md "Adding a species from a few examples": synthetic reef 0.58 named at 5 shots)
RECALL_SIMILARITY = 0.97  # cosine to a stored tool crop that counts as "the same organism, as labelled"


@dataclass(frozen=True)
class ToolBox:
    """One labelled region: a concept and a pixel box (x, y, w, h), or None for the whole image."""

    concept: str
    box: tuple[float, float, float, float] | None = None
    region: str | None = None  # the tool's id of the region


@dataclass(frozen=True)
class ToolAnnotation:
    """One annotation of one task: the task's image and what the person labelled in it."""

    project: int
    task: int
    annotation: int
    image: bytes
    boxes: tuple[ToolBox, ...]
    url: str | None = None  # where the image came from (kept on the image row)

    @property
    def source_id(self) -> str:
        return source_id(self.project, self.task, self.annotation)


@dataclass(frozen=True)
class ToolSteps:
    """The workspace's own steps the annotation steps call, bound to one model."""

    engine: Callable[[], Engine]  # the live engine (loaded when the home changed)
    writer: AbstractContextManager  # the home's writer lock (app.workspace.writer)
    build: Callable[[], Any]  # a new index generation when the stored vectors changed -> BuildResult
    add_species: Callable[[str, list[Path]], Any]  # species add from crop files -> SpeciesChange
    remove_species: Callable[[str], Any]  # species remove -> SpeciesChange
    refresh: Callable[[], None]  # forget the loaded engines


def source_id(project: int, task: int, annotation: int) -> str:
    """The catalog key of an annotation: ``project-P/annotation-A/task-T`` (found again from the
    project and annotation ids alone: Label Studio's delete event names no task)."""
    return f"{annotation_prefix(project, annotation)}task-{task}"


def annotation_prefix(project: int, annotation: int) -> str:
    return f"project-{project}/annotation-{annotation}/"


@dataclass(frozen=True)
class AnnotationChange:
    """What one annotation event changed in the catalog."""

    source_id: str
    action: str  # stored | replaced | unchanged | removed | absent
    crops: int = 0  # truth crops the annotation holds now
    generation: str | None = None  # the live generation after the change
    species_added: tuple[str, ...] = ()
    species_removed: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (item, one-line reason)
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "action": self.action,
            "crops": self.crops,
            "generation": self.generation,
            "species_added": list(self.species_added),
            "species_removed": list(self.species_removed),
            "skipped": [{"item": i, "reason": r} for i, r in self.skipped],
            "notes": list(self.notes),
        }


def _same(stored: list, wanted: list[tuple[str, tuple[float, float, float, float]]]) -> bool:
    have = sorted((b.concept, tuple(round(v, 1) for v in b.box)) for b in stored)
    return have == sorted((c, tuple(round(v, 1) for v in box)) for c, box in wanted)


def _clipped(boxes: Sequence[ToolBox], width: int, height: int) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Each box as the catalog stores it: clipped to the image, the whole image for None."""
    out = []
    for b in boxes:
        x, y, w, h = b.box if b.box is not None else (0.0, 0.0, float(width), float(height))
        x0, y0 = max(0.0, x), max(0.0, y)
        out.append((b.concept, (x0, y0, min(float(width), x + w) - x0, min(float(height), y + h) - y0)))
    return out


def _embed_new(catalog: Catalog, home: Home, engine: Engine, ids: np.ndarray) -> None:
    """Embed the crops ``ids`` with the live encoder and store their vectors."""
    from app.workspace.spaces import embed_general_crops
    from index.catalog.embeddings import store_embeddings
    from index.catalog.lookup import crop_files

    ok, vectors = engine.embed_files(crop_files(catalog, home.root, [int(i) for i in ids]))
    store_embeddings(catalog, engine.model_id, ids[np.asarray(ok, dtype=np.int64)], vectors)
    embed_general_crops(catalog, home, engine.model_id, ids)  # and in the general space, where the model keeps one


def _live(home: Home, model_id: str) -> str | None:
    """The model's live generation (read from the home now)."""
    from index.vectors.generations import current_generation

    return current_generation(home.root, model_id)


def store_annotation(
    catalog: Catalog,
    home: Home,
    crop: CropConfig,
    note: ToolAnnotation,
    steps: ToolSteps,
    min_examples: int | None = None,
    on_recallable: Callable[[], None] | None = None,
) -> AnnotationChange:
    """Keep ``note`` as truth crops (source ``label-studio``), searchable at once; add a species
    the model does not know once it has ``min_examples`` crops. ``on_recallable`` is called as soon
    as :func:`recall` finds the crops (their vectors are stored), before the new index generation is
    built. Raises BadImage (the image does not decode), InvalidInput (no box), EmptyIndex (no model)."""
    if not note.boxes:
        raise InvalidInput(f"annotation {note.annotation} of task {note.task} labels nothing")
    image = decode_bytes(note.image, f"task {note.task}")
    wanted = _clipped(note.boxes, image.width, image.height)
    sid = note.source_id
    model_id = steps.engine().model_id  # no model: one line before anything is written
    with steps.writer:
        stored = image_boxes(catalog, SOURCE, sid)
        if stored is not None and _same(stored, wanted):
            return AnnotationChange(sid, "unchanged", len(stored), _live(home, model_id))
        if stored is not None:
            _delete(home, retract_image(catalog, SOURCE, sid))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"task-{note.task}.{_suffix(note.image)}"
            path.write_bytes(note.image)
            group = f"{SOURCE}:project-{note.project}/task-{note.task}"
            record = ImageRecord(
                SOURCE,
                sid,
                path,
                url=note.url,
                boxes=tuple(
                    BoxRecord(
                        c,
                        *(box if b.box is not None else FULL_FRAME),
                        group_key=group,
                        source_id=f"{sid}#{b.region or n}",
                    )
                    for n, (b, (c, box)) in enumerate(zip(note.boxes, wanted, strict=True))
                ),
            )
            report = ingest_records(catalog, home.root, SOURCE, [record], crop=crop)
        now = image_boxes(catalog, SOURCE, sid) or []
        try:
            if now:
                _embed_new(catalog, home, steps.engine(), np.asarray([b.annotation_id for b in now], dtype=np.int64))
            if on_recallable is not None:
                on_recallable()
            generation = steps.build().generation
        except BaseException:  # crops without vectors would read as "unchanged" next time: take them back
            _delete(home, retract_image(catalog, SOURCE, sid))
            raise
        finally:
            steps.refresh()
    added = _promote(catalog, home, steps, {c for c, _ in wanted}, min_examples or MIN_EXAMPLES)
    log.info(
        "label-studio: %s %s: %d truth crops, generation %s%s",
        "replaced" if stored else "stored",
        sid,
        len(now),
        generation,
        f", species added: {', '.join(added)}" if added else "",
    )
    return AnnotationChange(
        sid,
        "replaced" if stored is not None else "stored",
        len(now),
        _live(home, model_id),
        species_added=added,
        skipped=tuple(report.skipped),
        notes=tuple(f"{i}: {t}" for i, t in report.notes),
    )


def forget_annotation(
    catalog: Catalog,
    home: Home,
    project: int,
    annotation: int,
    steps: ToolSteps,
    min_examples: int | None = None,
    on_recallable: Callable[[], None] | None = None,
) -> AnnotationChange:
    """Undo :func:`store_annotation`: its crops, vectors and files go, and a species it helped
    add is removed when it falls under ``min_examples`` crops. Never stored: ``absent``.
    ``on_recallable`` is called once :func:`recall` no longer finds them (before the new build)."""
    min_examples = min_examples or MIN_EXAMPLES
    prefix = annotation_prefix(project, annotation)
    with steps.writer:
        keys = source_ids_like(catalog, SOURCE, prefix)
        if not keys:
            return AnnotationChange(prefix.rstrip("/"), "absent")
        concepts: list[str] = []
        for key in keys:
            gone = retract_image(catalog, SOURCE, key)
            concepts += gone.concepts
            _delete(home, gone)
        if on_recallable is not None:
            on_recallable()
        try:
            generation = steps.build().generation
        finally:
            steps.refresh()
    removed = []
    engine = steps.engine()
    for concept in sorted(set(concepts)):
        if engine.origins.get(concept) == "added" and len(concept_crops(catalog, SOURCE, concept)) < min_examples:
            steps.remove_species(concept)
            removed.append(concept)
    log.info(
        "label-studio: removed %s: %d truth crops, generation %s%s",
        ", ".join(keys),
        len(concepts),
        generation,
        f", species removed: {', '.join(removed)}" if removed else "",
    )
    return AnnotationChange(keys[0], "removed", 0, _live(home, engine.model_id), species_removed=tuple(removed))


def _delete(home: Home, gone) -> None:
    for rel in [*gone.crop_paths, *gone.image_paths]:
        home.resolve(rel).unlink(missing_ok=True)


def _promote(catalog: Catalog, home: Home, steps: ToolSteps, concepts: set[str], min_examples: int) -> tuple[str, ...]:
    """Add each of ``concepts`` the model does not know that has ``min_examples`` tool crops."""
    known = set(steps.engine().prototypes.names)
    added = []
    for concept in sorted(concepts - known):
        rows = concept_crops(catalog, SOURCE, concept)
        if len(rows) >= min_examples:
            steps.add_species(concept, [home.resolve(p) for _, p in rows])
            added.append(concept)
    return tuple(added)


def _suffix(data: bytes) -> str:
    """The file suffix of encoded image bytes (``png``, ``jpeg``, ...; ``img`` when unsure)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as probe:
            return (probe.format or "img").lower()
    except (UnidentifiedImageError, OSError):
        return "img"


def embed_images(engine: Engine, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
    """Upright RGB images -> ``(n, d) float32`` L2-normalised vectors, ``batch_size`` per forward pass."""
    images = list(images)
    if not images:
        return np.zeros((0, engine.prototypes.dim), np.float32)
    return np.concatenate([engine.embed(images[s : s + batch_size]) for s in range(0, len(images), batch_size)])


def recall(
    catalog: Catalog,
    load_engine: Callable[[], Engine],
    items: Sequence[Image.Image] | np.ndarray,
    min_similarity: float = RECALL_SIMILARITY,
) -> list[tuple[str, float] | None]:
    """For each image (or each row of ``(n, d)`` vectors), the concept of the nearest crop stored
    from the tool and its cosine when it is at least ``min_similarity`` (a near-duplicate of
    something a person labelled), else None. Images are embedded only when the tool stored crops.
    The tool's crops are compared exactly, from their stored vectors (a handful), not through the
    index: a crop stored by a webhook is recalled as soon as its vector is written, before the new
    index generation that holds it is live (Label Studio asks again while that build runs)."""
    from index.catalog.embeddings import load_embeddings

    out: list[tuple[str, float] | None] = [None] * len(items)
    if len(items) == 0:
        return out
    allowed = source_ids(catalog, SOURCE)
    if allowed.size == 0:
        return out
    engine = load_engine()
    _, stored, names = load_embeddings(catalog, engine.model_id, with_labels=True, ids=allowed)
    if len(stored) == 0:
        return out
    vectors = items if isinstance(items, np.ndarray) else embed_images(engine, items)
    sims = np.asarray(vectors, dtype=np.float32) @ stored.T  # (n, m) cosines: both sides unit vectors
    best = sims.argmax(axis=1)
    for n, j in enumerate(best):
        if sims[n, j] >= min_similarity:
            out[n] = (str(names[j]), float(sims[n, j]))
    return out


def recall_tag(catalog: Catalog, model_id: str) -> str | None:
    """A short digest of the tool's crops that :func:`recall` can find now (those with a vector of
    ``model_id``: their ids and labels), ``"<count>.<8 hex>"``; None when there are none. It changes
    the moment a webhook's crop gets its vector (before the new index generation is live) and when
    one is removed or relabelled (an edit stores new crop ids)."""
    from index.catalog.embeddings import load_embeddings

    allowed = source_ids(catalog, SOURCE)
    if allowed.size == 0:
        return None
    ids, _, names = load_embeddings(catalog, model_id, with_labels=True, ids=allowed)
    if len(ids) == 0:
        return None
    digest = hashlib.blake2b(np.asarray(ids, dtype=np.int64).tobytes(), digest_size=4)
    digest.update("\0".join(str(n) for n in names).encode())
    return f"{len(ids)}.{digest.hexdigest()}"
