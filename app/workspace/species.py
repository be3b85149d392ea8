"""Adding a species from a few examples, and removing it, without retraining.

Adding is four named steps, each a call into a library:

1. ``ingest``: :func:`index.ingest.ingest.add_support_examples` stores the examples as
   ``support`` crops of the new species;
2. ``embed``: the engine's encoder embeds them;
3. ``store``: :func:`index.catalog.embeddings.add_support_class` writes their vectors, the
   species' prototype and a new prototypes version in ONE transaction;
4. ``publish``: the live index plus the new vectors becomes a new generation.

A failure at any step undoes the earlier ones (the crops, their files, the
catalog rows), so the workspace is left as it was. Removing publishes the index
without the species first and then deletes it from the catalog in one
transaction; if that fails, the previous generation is made live again. A model that keeps
the general space too (:mod:`app.workspace.spaces`) is changed in both, all or nothing
(:func:`add_species_all_spaces`, :func:`remove_species_all_spaces`).
The engine's stored decision (scorer, thresholds, temperature) is never touched: an added
species is judged against it (:mod:`app.workspace.engine`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from app.workspace.engine import Engine
from app.workspace.identify import ImageInput, decode, input_name
from app.workspace.pipeline import catalog_content, live_manifest, publish_generation
from app.workspace.species_names import check_new_name, labelled_elsewhere, resolve_name
from app.workspace.stored_scorers import store_added_scorer
from index.catalog.catalog import Catalog
from index.catalog.embeddings import (
    ADDED,
    RemovedClass,
    add_support_class,
    content_digest,
    load_embeddings,
    model_record,
    remove_support_class,
    support_crops,
)
from index.catalog.stats import concepts
from index.catalog.taxa import undo as undo_taxa
from index.catalog.taxa import upsert as upsert_taxa
from index.errors import BadImage, CatalogBusy, InvalidInput, OceanidError
from index.home import Home
from index.ingest.crops import CropConfig
from index.ingest.ingest import add_support_examples, whole_frame_crop
from index.records import Taxon
from index.taxon_rows import chain

if TYPE_CHECKING:
    from PIL import Image

    from app.workspace.engine_cache import Engines
    from app.workspace.writer import HomeWriter

log = logging.getLogger(__name__)

STEPS = ("ingest", "embed", "store", "publish")
StepHook = Callable[[str], None]


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


def _taxa(name: str, genus: str | None, family: str | None) -> list[Taxon]:
    """The species and the ancestors given on the command line (a binomial name gives its genus)."""
    return chain(name, {"genus": genus, "family": family})


def _undo_add(catalog: Catalog, home: Home, model_id: str, name: str, version: int, files_before: set[str]) -> None:
    """Take back a half-done add: catalog rows, taxa, crop files and the example files it wrote."""
    removed = remove_support_class(catalog, model_id, name, version=version)
    undo_taxa(catalog, name)
    _delete_files(home, removed)
    folder = home.added_examples(name)
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name not in files_before:
                path.unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()


def _delete_files(home: Home, removed: RemovedClass) -> None:
    """Delete the crop files and the stored frames that the catalog no longer lists."""
    for path in [*removed.crop_paths, *removed.image_paths]:
        home.resolve(path).unlink(missing_ok=True)


def _check_live(engine: Engine, live: str | None) -> None:
    """A change is built on the live generation (``app.workspace.writer`` holds the home's lock
    while it reads it): refuse one built on an engine of another generation, which would drop
    what that generation added."""
    if engine.generation != live:
        raise CatalogBusy(
            f"the live index changed ({engine.generation} -> {live}) while this change was prepared", hint="try again"
        )


def add_species(
    engine: Engine,
    catalog: Catalog,
    home: Home,
    name: str,
    items: Sequence[ImageInput],
    genus: str | None = None,
    family: str | None = None,
    crop: CropConfig = CropConfig(),
    on_step: StepHook | None = None,
    correct: bool = False,
) -> SpeciesChange:
    """:func:`add_species_with_crops` without the crops (see there)."""
    return add_species_with_crops(engine, catalog, home, name, items, genus, family, crop, on_step, correct)[0]


def add_species_with_crops(
    engine: Engine,
    catalog: Catalog,
    home: Home,
    name: str,
    items: Sequence[ImageInput],
    genus: str | None = None,
    family: str | None = None,
    crop: CropConfig = CropConfig(),
    on_step: StepHook | None = None,
    correct: bool = False,
) -> tuple[SpeciesChange, list[Image.Image] | None]:
    """Add species ``name`` from example images; unreadable examples are reported in ``skipped``.

    ``genus`` / ``family`` fill what the catalog's taxonomy lacks; a name that differs from a
    known one is kept as it was and reported in ``taxonomy_kept``, unless ``correct``.
    ``species remove`` puts the taxa back as they were before the add.

    ``on_step`` is called with each step name before the step runs (tests fail there). The examples are
    decoded once: their support crops are stored and embedded from memory
    (:func:`index.ingest.ingest.whole_frame_crop`), never read back; they are returned with the change
    (in the order of the stored crops; None when they were read from the files) for the general space.

    Raises:
        InvalidInput: the name is empty or already has prototypes, or no example is usable.
    """
    from app.workspace.encoders import embed_in_batches, embed_paths

    name = (name or "").strip()
    if not name:
        raise InvalidInput("a species needs a name")
    if name in engine.prototypes.names:
        raise InvalidInput(f"species {name!r} already exists; pick another name or `oceanid species remove` it first")
    check_new_name(name, [*engine.prototypes.names, *concepts(catalog)])
    items = list(items)
    examples, skipped = [], []
    for n, item in enumerate(items):
        label = input_name(item, n, "example")
        try:
            examples.append((label, decode(item, label)))
        except BadImage as exc:
            skipped.append((label, str(exc)))
    if not examples:
        raise InvalidInput(
            f"none of the {len(items)} example image(s) could be read: "
            f"{skipped[0][1] if skipped else 'no images given'}"
        )
    model_id = engine.model_id
    config_hash = model_record(catalog, model_id).config_hash
    _check_live(engine, live_manifest(home, model_id)[0])
    _, live = live_manifest(home, model_id)
    in_sync = live is not None and live.content == catalog_content(catalog, model_id)
    version = catalog.prototypes_version(model_id)
    folder = home.added_examples(name)
    files_before = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    taxa = _taxa(name, genus, family)
    step = on_step or (lambda _: None)
    kept: tuple = ()
    try:
        step("ingest")
        kept = upsert_taxa(catalog, taxa, correct=correct, undo_for=name).kept
        report = add_support_examples(catalog, home.root, name, examples, crop)
        skipped += report.skipped
        rows = support_crops(catalog, name)
        step("embed")
        crops = support_images(examples, crop, len(rows))
        if crops is not None:
            vectors, ok = embed_in_batches(engine.model.embed, crops), list(range(len(crops)))
        else:  # the stored crops are not the examples cut as ingest cuts them: read them back
            vectors, ok, _ = embed_paths(engine.model, [home.resolve(p) for _, p in rows])
        ids = np.asarray([rows[i][0] for i in ok], dtype=np.int64)
        if ids.size == 0:
            raise InvalidInput(f"no example of {name!r} could be embedded")
        warnings = labelled_elsewhere(catalog, home.root, engine.index, vectors, name)
        prototypes = engine.prototypes.with_class(name, vectors)
        step("store")
        add_support_class(catalog, model_id, name, ids, vectors, prototypes)
        step("publish")
        index = engine.index.copy()  # the live engine's index is never changed in place
        index.add(ids, vectors)
        content = catalog_content(catalog, model_id) if in_sync else ""
        generation, _, _ = publish_generation(home, model_id, index, config_hash, content)
    except BaseException:
        _undo_add(catalog, home, model_id, name, version, files_before)
        raise
    log.info("added species %s from %d examples (generation %s)", name, ids.size, generation)
    _store_added_scorer(catalog, home, model_id)
    _store_added_confusion(catalog, home, model_id)
    change = SpeciesChange(
        name,
        "added",
        generation,
        examples=int(ids.size),
        skipped=tuple(skipped),
        taxonomy_kept=tuple(kept),
        warnings=warnings,
    )
    return change, crops


def support_images(
    examples: Sequence[tuple[str, Image.Image]], crop: CropConfig, stored: int
) -> list[Image.Image] | None:
    """The support crops ingest stored for ``examples``, cut again in memory (the examples it skips are
    skipped here by the same rule); None when they are not the ``stored`` crops one for one."""
    crops = []
    for _, image in examples:
        try:
            crops.append(whole_frame_crop(image, crop))
        except InvalidInput:
            continue
    return crops if len(crops) == stored else None


def remove_species(engine: Engine, catalog: Catalog, home: Home, name: str) -> SpeciesChange:
    """Remove a species added with :func:`add_species` (its prototypes, vectors and crops).

    Raises:
        NotFound: no such species. InvalidInput: it was learned in training.
    """
    from index.vectors.generations import set_current

    name = resolve_name(name, engine.prototypes.names)  # a typo: NotFound suggesting the near names
    if engine.origins.get(name) != ADDED:
        raise InvalidInput(
            f"{name!r} was learned in training, not added; hold it out with "
            "`oceanid split --holdout` and retrain instead"
        )
    model_id = engine.model_id
    config_hash = model_record(catalog, model_id).config_hash
    previous, live = live_manifest(home, model_id)
    _check_live(engine, previous)
    ids, vectors = load_embeddings(catalog, model_id)
    in_sync = live is not None and live.content == content_digest(ids, vectors)
    doomed = np.asarray([i for i, _ in support_crops(catalog, name)], dtype=np.int64)
    keep = ~np.isin(ids, doomed)
    content = content_digest(ids[keep], vectors[keep]) if in_sync else ""
    index = engine.index.copy()  # the live engine's index is never changed in place
    removed = index.remove(doomed)
    generation, _, _ = publish_generation(home, model_id, index, config_hash, content)
    try:
        gone = remove_support_class(catalog, model_id, name)
    except BaseException:
        if previous is not None:
            set_current(home.root, model_id, previous)
        raise
    _delete_files(home, gone)
    undo_taxa(catalog, name)
    _store_added_scorer(catalog, home, model_id)
    _store_added_confusion(catalog, home, model_id)
    return SpeciesChange(name, "removed", generation, removed_vectors=int(removed))


def _store_added_scorer(catalog: Catalog, home: Home, model_id: str) -> None:
    """Store the scorer the engine reads for the added species (the change itself is made: if
    this fails, ``oceanid index build`` stores it, and loading says so until then)."""
    try:
        store_added_scorer(catalog, home, model_id)
    except OceanidError as exc:
        log.warning("the scorer of the added species is not stored now (%s): run `oceanid index build`", exc)


def _store_added_confusion(catalog: Catalog, home: Home, model_id: str) -> None:
    """Store the count confusion with the added species (``app.workspace.counting``); a failure leaves the
    change made, and ``count`` says the confusion is missing."""
    from app.workspace.counting import refresh_added_confusion

    refresh_added_confusion(catalog, home, model_id)


# -- both vector spaces at once (the Workspace's species add / remove) -----------------------------------


def add_species_all_spaces(
    writer: HomeWriter,
    engines: Engines,
    catalog: Catalog,
    home: Home,
    crop: CropConfig,
    name: str,
    items: Sequence[ImageInput],
    genus: str | None,
    family: str | None,
    model: str | None,
    correct: bool,
) -> SpeciesChange:
    """Under the home's writer lock (the engine is read once it is held): :func:`add_species` in the
    tuned space (a freshly loaded engine, never an old one), then in the general space when the model
    keeps one (its spaces loaded before); all or nothing: a failure in the general space removes the
    species from the tuned one again (with the engine loaded then). The loaded engines are forgotten
    after each space's change, also on failure."""
    from app.workspace.spaces import add_general

    with writer:
        spaces = engines.spaces(model)
        try:
            change, crops = add_species_with_crops(
                engines.engine(model, fresh=True),
                catalog,
                home,
                name,
                list(items),
                genus,
                family,
                crop,
                correct=correct,
            )
        finally:
            engines.clear()
        if spaces is not None:
            try:
                add_general(catalog, home, spaces.general, name, crops)
            except BaseException:
                remove_species(engines.engine(model), catalog, home, name)
                raise
            finally:
                engines.clear()
        return change


def remove_species_all_spaces(
    writer: HomeWriter, engines: Engines, catalog: Catalog, home: Home, name: str, model: str | None
) -> SpeciesChange:
    """Under the home's writer lock: :func:`remove_species` in the tuned space, then in the general
    space when it holds the species. The loaded engines are forgotten after each space's change."""
    from app.workspace.spaces import remove_general

    with writer:
        spaces = engines.spaces(model)
        doomed = [i for i, _ in support_crops(catalog, name)]
        try:
            change = remove_species(engines.engine(model, fresh=True), catalog, home, name)
        finally:
            engines.clear()
        if spaces is not None and name in spaces.general.prototypes.names:
            remove_general(catalog, home, spaces.general, name, doomed)
            engines.clear()
        return change
