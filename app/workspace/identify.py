"""The three questions: what is it (identify), is it new (the OOD verdict), what looks like it (search).

Thin compositions over :mod:`app.workspace.engine`; the maths lives in ``index``
and ``embedder``, the catalog side of search in :mod:`index.catalog.lookup`. Inputs
are images as paths, bytes or PIL images.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from app.workspace.engine import Engine, judge
from app.workspace.identification import Identification, Neighbour, OodVerdict
from index.catalog.catalog import Catalog
from index.catalog.lookup import (
    CropHit,
    allowed_ids,
    crop_species,
    crop_vector,
    hits_metadata,
)
from index.errors import BadImage, Interrupted, InvalidInput
from index.imaging import decode_bytes, open_image
from index.ingest.ingest import tiny_image_warning
from index.metrics.unknown_ranks import answer_taxa
from index.taxonomy import decode as decode_taxa

if TYPE_CHECKING:
    from app.workspace.spaces import TwoSpaces
    from index.taxonomy import RankTable

log = logging.getLogger(__name__)

ImageInput = Path | str | bytes | Image.Image
BATCH = 64  # images embedded per forward pass


def decode(item: ImageInput, name: str) -> Image.Image:
    """A path, bytes or PIL image -> upright RGB PIL image. Raises BadImage."""
    if isinstance(item, bytes):
        return decode_bytes(item, name)
    if hasattr(item, "mode") and hasattr(item, "size"):
        return item
    return open_image(item)


def input_name(item: ImageInput, n: int, unnamed: str = "upload") -> str:
    """A file's name, else ``"<unnamed> n+1"``."""
    return Path(item).name if isinstance(item, (str, Path)) else f"{unnamed} {n + 1}"


#: Catalog crop ids -> their labels (``index.catalog.lookup.crop_species`` over the workspace's catalog).
Labeller = Callable[[Sequence[int]], dict[int, str]]
NEIGHBOURS = 3  # nearest catalog crops listed with each answer by default (0: none, the index is not read)


def nearest_crops(
    engine: Engine, vectors: np.ndarray, k: int, labels: Labeller | None = None
) -> list[tuple[Neighbour, ...]]:
    """For each of ``vectors`` (n, d) float32, its ``k`` nearest catalog crops in the live index,
    with their labels (``labels``), best first."""
    hits = engine.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
    species = labels([h.id for row in hits for h in row]) if labels is not None else {}
    return [tuple(Neighbour(int(h.id), float(h.score), species.get(int(h.id))) for h in row) for row in hits]


def identify(
    engine: Engine,
    items: Sequence[ImageInput],
    names: Sequence[str] | None = None,
    k: int = 5,
    batch_size: int | None = None,
    progress: bool = False,
    tree: dict | None = None,
    decode_method: str = "probable",
    rank_threshold: float | None = None,
    vectors: np.ndarray | None = None,
    neighbours: int = 0,
    labels: Labeller | None = None,
    spaces: TwoSpaces | None = None,
) -> list[Identification]:
    """Top-k species, every OOD verdict and (with ``tree``) the deepest confident taxon for each
    image; unreadable ones get ``error``.

    Each answer carries its trace: the file it came from, the box (the whole image), the
    model and the live generation; an image under ``index.ingest.ingest.TINY_SIDE`` px gets a ``warning``.

    Images are decoded and embedded ``batch_size`` at a time (a progress bar over the
    batches with ``progress``). The species and the unknown verdict are the engine's
    (:meth:`app.workspace.engine.Engine.verdicts`: the stored decision scorer and threshold);
    the rank threshold is the stored decision's (chosen on validation) unless ``rank_threshold``.
    A crop judged unknown is placed only at a rank whose claims held up on held-out species
    (the decision's ``unknown_ranks``, :mod:`index.metrics.unknown_ranks`), or at none.
    ``vectors``: the items' (n, d) embeddings when the caller has them already (an image that
    is also searched is embedded once, :func:`embed_query`).
    ``neighbours``: list that many nearest catalog crops with each answer (:func:`nearest_crops`,
    labelled by ``labels``; the tuned space's index); 0 lists none and never reads the index.
    ``spaces``: the model's two vector spaces (:mod:`app.workspace.spaces`): each image is decoded once and
    embedded in both (``vectors`` are then not used), named and judged by their stored decision; the answer
    says which space named it and which decided "unknown" (the probabilities and the taxon stay the tuned
    space's).

    Raises:
        Interrupted: Ctrl-C mid-batch; it carries the answers of the batches finished before it.
    """
    if isinstance(k, bool) or k < 1:
        raise InvalidInput(f"--k must be at least 1, got {k}")
    if isinstance(neighbours, bool) or neighbours < 0:
        raise InvalidInput(f"--neighbours must be 0 or more, got {neighbours}")
    items = list(items)
    batch_size = batch_size or BATCH
    names = list(names) if names else [input_name(i, n) for n, i in enumerate(items)]
    trace = {"model": engine.model_id, "generation": engine.generation}
    out: list[Identification | None] = [None] * len(items)
    table = engine.rank_table(tree) if tree is not None else None
    rank_threshold = engine.rank_threshold if rank_threshold is None else rank_threshold
    starts = list(range(0, len(items), batch_size))

    def load(start: int) -> tuple[list[Image.Image], list[int]]:
        images, where = [], []
        for n in range(start, min(start + batch_size, len(items))):
            try:
                images.append(decode(items[n], names[n]))
                where.append(n)
            except BadImage as exc:
                out[n] = Identification.failed(names[n], str(exc), source=input_source(items[n]), **trace)
        return images, where

    finished = 0  # items before this index are answered (or failed): what an interrupt keeps
    try:
        for (images, where), start in zip(
            tqdm(
                _prefetched(load, starts),
                total=len(starts),
                desc="identify",
                unit="batch",
                disable=not progress or len(starts) <= 1,
            ),
            starts,
            strict=False,
        ):
            if not images:
                finished = min(start + batch_size, len(items))
                continue
            if spaces is not None:
                batch, general = spaces.embed(images)
            else:
                batch = (
                    engine.embed(images) if vectors is None else np.ascontiguousarray(vectors[where], dtype=np.float32)
                )
                general = None
            rows = [
                (names[n], input_source(items[n]), images[row].width, images[row].height) for row, n in enumerate(where)
            ]
            answered = answer_vectors(
                engine, batch, rows, k, spaces, general, table, rank_threshold, decode_method, neighbours, labels
            )
            for n, answer in zip(where, answered, strict=True):
                out[n] = answer
            finished = min(start + batch_size, len(items))
    except KeyboardInterrupt:
        raise Interrupted([o for o in out[:finished] if o is not None], finished, len(items)) from None
    return out


#: What an answer says of the image it came from: (name, source file or None, width, height).
AnsweredImage = tuple[str, str | None, int, int]


def answer_vectors(
    engine: Engine,
    batch: np.ndarray,
    rows: Sequence[AnsweredImage],
    k: int,
    spaces: TwoSpaces | None = None,
    general: np.ndarray | None = None,
    table: RankTable | None = None,
    rank_threshold: float | None = None,
    decode_method: str = "probable",
    neighbours: int = 0,
    labels: Labeller | None = None,
) -> list[Identification]:
    """The answers of :func:`identify` for ``batch`` (n, d) float32 tuned-space vectors (and ``general``,
    the general space's, where the model has ``spaces``), one per ``rows`` entry: the image's name,
    source, width and height. ``table``: the rank table of the catalog's tree (None: no taxon)."""
    rank_threshold = engine.rank_threshold if rank_threshold is None else rank_threshold
    trace = {"model": engine.model_id, "generation": engine.generation}
    judged = judge(engine, batch, k)
    verdicts, tops, probs = judged.verdicts, judged.tops, judged.top_probabilities
    by = None if spaces is None else spaces.verdicts(batch, general)
    if by is not None:  # named in the naming space, "unknown" as the two spaces' stored rule says
        tops = engine.prototypes.ranked(by.similarities, k)
        verdicts = by.verdicts
    scores, unknown = verdicts.scores, verdicts.unknown
    answers = (
        None
        if table is None
        else answer_taxa(
            table,
            judged.probabilities,
            judged.similarities,
            decode_taxa(table, judged.probabilities, rank_threshold, decode_method, unknown=unknown[engine.scorer]),
            unknown[engine.scorer],
            engine.unknown_ranks,
        )
    )
    near = nearest_crops(engine, batch, neighbours, labels) if neighbours else None
    out = []
    for row, (name, source, width, height) in enumerate(rows):
        verdict = {
            s: OodVerdict(float(v[row]), float(engine.thresholds[s]), bool(unknown[s][row])) for s, v in scores.items()
        }
        named = str(verdicts.species[row])
        out.append(
            Identification.answered(
                name,
                tops[row],
                probs[row],
                verdict,
                engine.scorer,
                named=None if named == "unknown" else named,
                warning=tiny_image_warning(width, height),
                source=source,
                box=(0, 0, width, height),
                taxon=answers[row] if answers is not None else None,
                named_by=str(by.named_by[row]) if by is not None else ("" if named == "unknown" else "tuned"),
                unknown_by=str(by.unknown_by[row]) if by is not None else ("tuned" if named == "unknown" else ""),
                neighbours=near[row] if near is not None else (),
                **trace,
            )
        )
    return out


def _prefetched(load, starts: list[int]):
    """``load(start)`` for each start, the next batch decoded in a thread while the caller
    embeds this one (PIL decoding and the forward pass both release the GIL)."""
    if len(starts) <= 1:
        yield from (load(s) for s in starts)
        return
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(load, starts[0])
        for nxt in [*starts[1:], None]:
            batch = ahead.result()
            if nxt is not None:
                ahead = pool.submit(load, nxt)
            yield batch


def input_source(item: ImageInput) -> str | None:
    """The file an input came from (absolute), or None for bytes and in-memory images."""
    return str(Path(item).absolute()) if isinstance(item, (str, Path)) else None


def embed_query(engine: Engine, item: ImageInput, name: str = "query") -> np.ndarray:
    """One image -> its (1, d) float32 embedding, to identify and search with (embedded once).
    Raises BadImage."""
    return engine.embed([decode(item, name)])


def search(
    engine: Engine,
    catalog: Catalog,
    home: Path,
    query: ImageInput | int | np.ndarray,
    k: int = 10,
    where: str | None = None,
    allowed: np.ndarray | None = None,
) -> list[CropHit]:
    """The k nearest crops to an image, its (1, d) embedding (:func:`embed_query`) or a catalog
    crop id, inside an optional filter.

    The filter is evaluated in DuckDB and applied inside FAISS as an id selector,
    so a filtered answer is exact. A filter that matches nothing gives [].
    Querying by crop id leaves that crop out of its own answer. ``allowed``: the filter's ids
    (``index.catalog.lookup.allowed_ids(catalog, where)``) when the caller has them already.
    """
    if isinstance(k, bool) or k < 1:
        raise InvalidInput(f"--k must be at least 1, got {k}")
    exclude = None
    if isinstance(query, (int, np.integer)):
        vector, exclude = crop_vector(catalog, engine.model_id, int(query)), int(query)
    elif isinstance(query, np.ndarray):
        vector = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
    else:
        vector = engine.embed([decode(query, "query")])
    allowed = allowed_ids(catalog, where) if allowed is None else allowed
    if allowed is not None and exclude is not None:
        allowed = allowed[allowed != exclude]
    if allowed is not None and allowed.size == 0:
        return []
    index = engine.gpu_index if allowed is None and engine.gpu_index is not None else engine.index
    hits = index.search(vector, k + (exclude is not None), allowed_ids=allowed)[0]
    hits = [h for h in hits if h.id != exclude][:k]
    return hits_metadata(catalog, home, hits)


def identify_home(
    engine: Engine,
    tree: dict,
    spaces: TwoSpaces | None,
    catalog: Catalog,
    items: Sequence[ImageInput],
    k: int = 5,
    names: Sequence[str] | None = None,
    progress: bool = False,
    decode: str = "probable",
    vectors: np.ndarray | None = None,
    neighbours: int = 0,
) -> list[Identification]:
    """:func:`identify` with the catalog's lineages ``tree`` and its crops' labels for the neighbours
    (``decode``: probable | distance, the taxon rule; ``vectors``: the images' embeddings from
    :func:`embed_query`, when they are searched with too)."""
    labels = labels_of(catalog)
    return identify(
        engine,
        list(items),
        names=names,
        k=k,
        progress=progress,
        tree=tree,
        decode_method=decode,
        vectors=vectors,
        spaces=spaces,
        neighbours=neighbours,
        labels=labels,
    )


def labels_of(catalog: Catalog) -> Labeller:
    """The labels of catalog crops, read when neighbours are listed."""
    return lambda ids: crop_species(catalog, ids)
