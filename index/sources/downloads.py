"""HTTP fetching with retries, and a parallel downloader that never leaves half files.

Transient problems (HTTP 5xx / 429, connection errors, timeouts, truncated
bodies, bytes PIL cannot read) are retried with exponential backoff
(``backoff * 2**attempt`` seconds); permanent ones (other 4xx, a bad URL) fail at
once. A file lands under its final name only after it was complete and PIL
verified it: bytes go to a hidden temp file in the destination folder, which is
fsynced and then ``os.replace``-d, so an interrupted run leaves either the whole
file or nothing (temp files of a killed process start with ``.`` and end with
``.part``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import requests
from PIL import Image
from tqdm import tqdm

log = logging.getLogger(__name__)

T = TypeVar("T")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
_FORMAT_SUFFIX = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "TIFF": ".tif",
    "BMP": ".bmp",
    "GIF": ".gif",
    "WEBP": ".webp",
    "MPO": ".jpg",
}
_PERMANENT = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)


class FetchError(Exception):
    """A URL could not be fetched; ``reason`` is one line, ``status`` the last HTTP code."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{reason} ({url})")
        self.url = url
        self.reason = reason
        self.status = status


class _Transient(Exception):
    """A failed attempt worth repeating."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _checked_request(
    session: requests.Session, method: str, url: str, *, timeout: float, **kwargs
) -> requests.Response:
    """One HTTP request; returns a 2xx/3xx response, raises ``_Transient`` or ``FetchError``."""
    try:
        resp = session.request(method, url, timeout=timeout, **kwargs)
    except _PERMANENT as exc:
        raise FetchError(url, f"bad URL: {_one_line(exc)}") from exc
    except requests.Timeout as exc:
        raise _Transient(f"timed out after {timeout:g} s") from exc
    except requests.RequestException as exc:
        raise _Transient(f"{type(exc).__name__}: {_one_line(exc)}") from exc
    if resp.status_code >= 500 or resp.status_code == 429:
        resp.close()
        raise _Transient(f"HTTP {resp.status_code} {resp.reason}".strip(), resp.status_code)
    if resp.status_code >= 400:
        resp.close()
        raise FetchError(url, f"HTTP {resp.status_code} {resp.reason}".strip(), resp.status_code)
    return resp


def _with_retries(
    attempt: Callable[[], T], url: str, *, retries: int, backoff: float, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Call ``attempt`` up to ``retries + 1`` times while it raises ``_Transient``.

    Raises:
        FetchError: a permanent failure, or the last transient one once retries are spent.
    """
    last: _Transient | None = None
    for i in range(retries + 1):
        try:
            return attempt()
        except _Transient as exc:
            last = exc
            log.debug("attempt %d/%d for %s failed: %s", i + 1, retries + 1, url, exc)
            if i < retries:
                sleep(backoff * 2**i)
    assert last is not None
    raise FetchError(url, f"{last} (gave up after {retries + 1} attempts)", last.status)


def request_with_retries(
    session: requests.Session, method: str, url: str, *, retries: int, backoff: float, timeout: float, **kwargs
) -> requests.Response:
    """``_checked_request`` retried on transient failures; the body is read in full.

    Raises:
        FetchError: the request failed for good (one-line ``reason``).
    """

    def attempt() -> requests.Response:
        resp = _checked_request(session, method, url, timeout=timeout, **kwargs)
        try:
            resp.content  # noqa: B018 - read now so a truncated body is retried here
        except requests.RequestException as exc:
            raise _Transient(f"body cut short: {_one_line(exc)}") from exc
        return resp

    return _with_retries(attempt, url, retries=retries, backoff=backoff)


def url_suffix(url: str) -> str | None:
    """The image suffix of a URL's path ('.png', '.jpg', ...), lower case, or None."""
    suffix = Path(urlsplit(url).path).suffix.lower()
    return suffix if suffix in IMAGE_SUFFIXES else None


def verify_image(path: Path) -> str:
    """Check with PIL that ``path`` holds a whole image; return its format ('PNG', 'JPEG', ...).

    Raises:
        ValueError: PIL cannot identify or verify the file (one-line message).
    """
    try:
        with Image.open(path) as im:
            fmt = im.format or ""
            im.verify()
        if fmt == "JPEG":  # verify() is a no-op for JPEG; decoding finds a cut-off stream
            with Image.open(path) as im:
                im.load()
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ...)
        raise ValueError(f"not a readable image: {_one_line(exc)}") from exc
    return fmt


def existing_file(stem: Path) -> Path | None:
    """A complete, PIL-readable file ``<stem><suffix>`` already on disk, or None."""
    for path in sorted(stem.parent.glob(stem.name + ".*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.name.startswith(stem.name + "."):
            try:
                verify_image(path)
            except ValueError:
                log.warning("re-downloading unreadable %s", path)
                continue
            return path
    return None


def download_file(
    session: requests.Session, url: str, stem: Path, *, retries: int, backoff: float, timeout: float
) -> Path:
    """Download ``url`` to ``<stem><suffix>`` atomically and return the final path.

    The suffix comes from the URL, or from the image format when the URL has none.

    Raises:
        FetchError: 4xx, bad URL, or transient failures beyond ``retries``.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)

    def attempt() -> Path:
        resp = _checked_request(session, "GET", url, timeout=timeout, stream=True)
        fd, tmp_name = tempfile.mkstemp(dir=stem.parent, prefix=f".{stem.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            written = 0
            with resp, os.fdopen(fd, "wb") as fh:
                try:
                    for chunk in resp.iter_content(chunk_size=1 << 16):
                        fh.write(chunk)
                        written += len(chunk)
                except requests.RequestException as exc:
                    raise _Transient(f"body cut short after {written} bytes: {_one_line(exc)}") from exc
                fh.flush()
                os.fsync(fh.fileno())
            expected = resp.headers.get("Content-Length")
            encoded = resp.headers.get("Content-Encoding", "identity") not in ("", "identity")
            if expected is not None and not encoded and expected.isdigit() and written != int(expected):
                raise _Transient(f"body cut short: got {written} of {expected} bytes")
            try:
                fmt = verify_image(tmp)
            except ValueError as exc:
                raise _Transient(str(exc)) from exc
            final = stem.with_name(stem.name + (url_suffix(url) or _FORMAT_SUFFIX.get(fmt, ".img")))
            os.replace(tmp, final)
            return final
        finally:
            tmp.unlink(missing_ok=True)

    return _with_retries(attempt, url, retries=retries, backoff=backoff)


@dataclass(frozen=True)
class DownloadJob:
    """One file to fetch: ``key`` names it in results, the file becomes ``<stem><suffix>``."""

    key: str
    url: str
    stem: Path


def download_many(
    jobs: Sequence[DownloadJob],
    *,
    workers: int = 16,
    retries: int = 4,
    backoff: float = 0.5,
    timeout: float = 20.0,
    progress: bool = False,
    desc: str = "download",
) -> tuple[dict[str, Path], list[tuple[str, str]]]:
    """Fetch ``jobs`` in parallel (one ``requests.Session`` per worker thread).

    Returns:
        (key -> final path for each job that landed, [(key, one-line reason)] for the rest),
        failures in job order. One job failing never stops the others.
    """
    local = threading.local()
    sessions: list[requests.Session] = []
    lock = threading.Lock()

    def run(job: DownloadJob) -> Path:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            with lock:
                sessions.append(local.session)
        return download_file(local.session, job.url, job.stem, retries=retries, backoff=backoff, timeout=timeout)

    done: dict[str, Path] = {}
    failed: dict[str, str] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(run, job): job for job in jobs}
            for fut in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="file", disable=not progress):
                job = futures[fut]
                try:
                    done[job.key] = fut.result()
                except FetchError as exc:
                    failed[job.key] = f"{exc.reason} ({job.url})"
                except OSError as exc:  # disk full, permission denied: report, keep going
                    failed[job.key] = f"could not write file: {_one_line(exc)}"
    finally:
        for s in sessions:
            s.close()
    failures = [(job.key, failed[job.key]) for job in jobs if job.key in failed]
    return done, failures
