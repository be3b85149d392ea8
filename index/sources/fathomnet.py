"""FathomNet source: images + boxes by concept, frames downloaded, WoRMS ancestors.

Built on the ``fathomnet`` client package: its endpoint classes
(``fathomnet.api.images.Images``, ``fathomnet.api.worms.Worms``) build the
URLs and its DTOs (``GeoImageConstraints``, ``AImageDTO``, ``WormsNode``) define
and parse the JSON, so a stand-in server that satisfies the client satisfies us.
Two things of the client we do not use as is:

- its base URLs are class attributes read from ``FATHOMNET_API_URL`` /
  ``FATHOMNET_WORMS_API_URL`` once, when ``fathomnet.api`` is first imported.
  We read them again on every call (``fathomnet.api.get_api_url()``,
  ``fathomnet.api.worms.get_worms_api_url()``) and bind them to per-call
  subclasses of the client's endpoint classes, so setting the variables after
  import works, and nothing global is mutated;
- its module functions send requests with no timeout and no retries, so we
  send the same requests ourselves with both (see :mod:`index.sources.downloads`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from fathomnet import dto
from fathomnet.api import EndpointManager, get_api_url
from fathomnet.api import images as fn_images
from fathomnet.api import worms as fn_worms

from index.errors import InvalidInput, SourceError
from index.records import SEQUENCE_KEYS, BoxRecord, ImageRecord, SourcePlan, Taxon, sequence_group
from index.sources.downloads import DownloadJob, FetchError, download_many, existing_file, request_with_retries

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # images asked for per query request
_SAFE_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # uuids become file names


def _bind(cls: type[EndpointManager], root: str) -> type[EndpointManager]:
    """A subclass of a client endpoint class rooted at ``root`` (per call, no global change)."""
    return type(cls.__name__, (cls,), {"ROOT": root.rstrip("/")})


def _get_json(session: requests.Session, method: str, url: str, what: str, **kwargs: Any) -> Any:
    """Request ``url`` with retries and decode its JSON body.

    Raises:
        FetchError: the request failed for good.
        SourceError: the body is not JSON.
    """
    resp = request_with_retries(session, method, url, **kwargs)
    try:
        return resp.json()
    except ValueError as exc:
        head = " ".join(resp.text[:60].split())
        raise SourceError(f"{what} sent malformed JSON from {url}: {exc} (body starts {head!r})") from exc


def _parse_images(data: Any, url: str) -> list[dto.AImageDTO]:
    if not isinstance(data, list):
        raise SourceError(f"FathomNet sent {type(data).__name__} where a list of images was expected ({url})")
    try:
        return [dto.AImageDTO.from_dict(item) for item in data]
    except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        first = " ".join(str(exc).split())[:160]
        raise SourceError(f"FathomNet sent images that do not match AImageDTO ({url}): {first}") from exc


def _depth_ok(im: dto.AImageDTO, lo: float | None, hi: float | None) -> bool:
    d = im.depthMeters
    if lo is None and hi is None:
        return True
    return d is not None and (lo is None or d >= lo) and (hi is None or d <= hi)


def _query_concept(
    session: requests.Session,
    images_ep: type[EndpointManager],
    concept: str,
    *,
    limit: int | None,
    min_depth: float | None,
    max_depth: float | None,
    **http: Any,
) -> list[dto.AImageDTO]:
    """Images holding ``concept`` (``POST images/query`` as ``fathomnet.api.images.find``), paged.

    Depth limits go to the server and are checked again here (no depth -> excluded).
    """
    url = images_ep.url("query")
    found: list[dto.AImageDTO] = []
    seen: set[str | None] = set()
    offset = 0
    while limit is None or len(found) < limit:
        size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(found))
        constraints = dto.GeoImageConstraints(
            concept=concept, minDepth=min_depth, maxDepth=max_depth, limit=size, offset=offset
        )
        try:
            data = _get_json(session, "POST", url, "FathomNet", json=constraints.to_dict(), **http)
        except FetchError as exc:
            raise SourceError(
                f"FathomNet query for {concept!r} failed: {exc.reason} ({url})",
                hint="check the network, or FATHOMNET_API_URL",
            ) from exc
        page = _parse_images(data, url)
        new = [im for im in page if im.uuid not in seen]
        seen.update(im.uuid for im in new)
        found.extend(im for im in new if _depth_ok(im, min_depth, max_depth))
        if len(page) < size or not new:  # last page, or a server that ignores offset
            break
        offset += len(page)
    return found if limit is None else found[:limit]


def _timestamp(text: str | None) -> datetime | None:
    """An ISO 8601 string as a naive UTC datetime (None when absent or unreadable)."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        log.warning("unreadable FathomNet timestamp %r", text)
        return None
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _group(im: dto.AImageDTO) -> str:
    """The image's group key: its dive / video / sequence tag when it has one, else its uuid."""
    tags = {str(t.key).strip().lower(): t.value for t in im.tags or [] if t.key}
    for key in SEQUENCE_KEYS:
        group = sequence_group("fathomnet", "tag", tags.get(key))
        if group is not None:
            return group
    return im.uuid


def _boxes(im: dto.AImageDTO) -> tuple[BoxRecord, ...]:
    """All usable boxes of the image: concept set, positive size, not rejected by a reviewer."""
    out = []
    for b in im.boundingBoxes or []:
        if b.concept and not b.rejected and None not in (b.x, b.y, b.width, b.height) and b.width > 0 and b.height > 0:
            out.append(
                BoxRecord(
                    concept=b.concept,
                    x=float(b.x),
                    y=float(b.y),
                    w=float(b.width),
                    h=float(b.height),
                    group_key=_group(im),
                    source_id=b.uuid,
                )
            )
    return tuple(out)


def _record(im: dto.AImageDTO, path: Path) -> ImageRecord:
    return ImageRecord(
        source="fathomnet",
        source_id=im.uuid,
        path=path,
        boxes=_boxes(im),
        depth_m=im.depthMeters,
        latitude=im.latitude,
        longitude=im.longitude,
        timestamp=_timestamp(im.timestamp),
        temperature_c=im.temperatureCelsius,
        salinity=im.salinity,
        oxygen_ml_l=im.oxygenMlL,
        imaging_type=im.imagingType,
        url=im.url,
    )


def _flatten(node: dto.WormsNode, parent: str | None, out: list[Taxon]) -> None:
    if node.name:
        out.append(Taxon(concept=node.name, rank=node.rank.lower() if node.rank else None, parent=parent))
        parent = node.name
    for child in node.children or []:
        _flatten(child, parent, out)


def _ancestors(worms_ep: type[EndpointManager], concept: str, **http: Any) -> tuple[list[Taxon], str | None]:
    """(root -> concept chain as Taxon list, failure reason or None) from ``taxa/ancestors``."""
    url = worms_ep.url(f"taxa/ancestors/{quote(concept)}")  # as fathomnet.api.worms.get_ancestors
    try:
        with requests.Session() as session:
            data = _get_json(session, "GET", url, "WoRMS", **http)
        node = dto.WormsNode.from_dict(data)
    except FetchError as exc:
        return [], f"WoRMS ancestors lookup failed: {exc.reason} ({url})"
    except SourceError as exc:
        return [], str(exc)
    except (TypeError, ValueError) as exc:
        return [], f"WoRMS sent an unexpected tree ({url}): {' '.join(str(exc).split())[:160]}"
    chain: list[Taxon] = []
    _flatten(node, None, chain)
    if concept not in {t.concept for t in chain}:
        return chain, f"WoRMS tree for it does not contain the name itself ({url})"
    return chain, None


def _lookup_taxa(
    worms_ep: type[EndpointManager], concepts: list[str], workers: int, failures: list[tuple[str, str]], **http: Any
) -> list[Taxon]:
    """Taxa for ``concepts`` and their ancestors, one per name (ranked entries win)."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(concepts) or 1))) as pool:
        answers = list(pool.map(lambda c: _ancestors(worms_ep, c, **http), concepts))
    taxa: dict[str, Taxon] = {}
    for concept, (chain, problem) in zip(concepts, answers, strict=False):
        if problem:
            failures.append((concept, problem))
        for t in chain:
            if t.concept not in taxa or (taxa[t.concept].rank is None and t.rank is not None):
                taxa[t.concept] = t
        taxa.setdefault(concept, Taxon(concept=concept))
    return list(taxa.values())


def fetch_fathomnet(
    concepts: Sequence[str],
    dest_dir: Path,
    *,
    max_per_concept: int | None = None,
    workers: int = 16,
    min_depth: float | None = None,
    max_depth: float | None = None,
    have: Callable[[str], bool] = lambda uuid: False,
    retries: int = 4,
    backoff: float = 0.5,
    timeout: float = 20.0,
    progress: bool = False,
    api_url: str | None = None,
    worms_url: str | None = None,
) -> SourcePlan:
    """Find FathomNet images of ``concepts``, download their frames, look up their taxa.

    Each image keeps *all* its usable boxes, including boxes of concepts not
    asked for (they are labels too); reviewer-rejected and empty boxes are
    dropped. An image found under several concepts is fetched once and counts
    towards ``max_per_concept`` of the first. Frames land as
    ``dest_dir/<uuid><suffix>`` (suffix from the URL), atomically. Resuming:
    images with ``have(uuid)`` True are neither downloaded nor returned (their
    uuids are in ``existing``); frames already complete in ``dest_dir`` are
    returned without a download. HTTP 5xx/429, connection errors, timeouts,
    truncated and unreadable bodies are retried ``retries`` times with delays
    ``backoff * 2**i`` s; each request waits at most ``timeout`` s.

    Args:
        api_url / worms_url: base URLs; default: ``FATHOMNET_API_URL`` /
            ``FATHOMNET_WORMS_API_URL`` read now (else the public servers).

    Returns:
        SourcePlan: the frames on disk as ``records`` (query order), every concept
        seen and its WoRMS ancestors as ``taxa``, the uuids already catalogued as
        ``existing``. Per-image problems (404, retries spent, unsafe uuid, no URL)
        and WoRMS lookup problems are lines in ``skipped``; the rest lands.

    Raises:
        SourceError: a query could not be answered (server down, HTTP error after
            retries, malformed JSON); the message names the URL.
        InvalidInput: ``max_per_concept`` < 1 or ``min_depth`` > ``max_depth``.
    """
    if max_per_concept is not None and max_per_concept < 1:
        raise InvalidInput(f"max_per_concept must be at least 1, got {max_per_concept}")
    if min_depth is not None and max_depth is not None and min_depth > max_depth:
        raise InvalidInput(f"min_depth {min_depth} is deeper than max_depth {max_depth}")
    images_ep = _bind(fn_images.Images, api_url or get_api_url())
    worms_ep = _bind(fn_worms.Worms, worms_url or fn_worms.get_worms_api_url())
    http = {"retries": retries, "backoff": backoff, "timeout": timeout}
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)

    found: dict[str, dto.AImageDTO] = {}
    failures: list[tuple[str, str]] = []
    with requests.Session() as session:
        for concept in dict.fromkeys(concepts):
            page = _query_concept(
                session, images_ep, concept, limit=max_per_concept, min_depth=min_depth, max_depth=max_depth, **http
            )
            log.info("FathomNet: %d images for %r", len(page), concept)
            if not page:
                failures.append((concept, "FathomNet has no images of it (within the depth limits)"))
            for im in page:
                if not im.uuid or not _SAFE_UUID.match(im.uuid):
                    failures.append((im.uuid or im.url or "?", f"unusable image uuid {im.uuid!r}"))
                elif not im.url:
                    failures.append((im.uuid, "FathomNet gave no image URL"))
                else:
                    found.setdefault(im.uuid, im)

    existing = [u for u in found if have(u)]
    paths: dict[str, Path] = {}
    jobs = []
    for uuid, im in found.items():
        if uuid in existing:
            continue
        on_disk = existing_file(dest_dir / uuid)
        if on_disk is not None:
            paths[uuid] = on_disk
        else:
            jobs.append(DownloadJob(key=uuid, url=im.url, stem=dest_dir / uuid))
    log.info(
        "FathomNet: %d images, %d in catalog, %d on disk, %d to download",
        len(found),
        len(existing),
        len(paths),
        len(jobs),
    )
    done, download_failures = download_many(jobs, workers=workers, progress=progress, desc="FathomNet frames", **http)
    paths.update(done)
    failures.extend(download_failures)
    records = [_record(im, paths[u]) for u, im in found.items() if u in paths]

    wanted = list(dict.fromkeys([*concepts, *(b.concept for r in records for b in r.boxes)]))
    taxa = _lookup_taxa(worms_ep, wanted, workers, failures, **http)
    log.info("FathomNet: %d images landed, %d taxa, %d failures", len(records), len(taxa), len(failures))
    return SourcePlan(records=records, taxa=taxa, skipped=failures, existing=existing)
