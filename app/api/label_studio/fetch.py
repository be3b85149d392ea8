"""Fetching a task's image from where Label Studio put it.

- uploaded files (``/data/upload/3/ab12-reef.png``) and local-files storage
  (``/data/local-files/?d=reef/001.jpg``): relative URLs on Label Studio itself, fetched from
  ``LABEL_STUDIO_URL`` with ``Authorization: Token LABEL_STUDIO_API_KEY``;
- plain ``http(s)://`` URLs (the token is sent only to Label Studio's own address);
- ``data:image/...;base64,...`` URIs.

Every fetch is bounded: ``max_bytes`` per image (read in chunks, stopped past it), a timeout,
and the project's one decoder's pixel limit afterwards. A failure is one line (BadImage).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from index.errors import BadImage

CHUNK = 64 * 1024


@dataclass(frozen=True)
class ImageFetcher:
    """Fetches task images. ``url``: Label Studio's address; ``token``: its API token."""

    url: str | None = None
    token: str | None = None
    max_bytes: int = 32 * 1024 * 1024
    timeout: float = 15.0

    def headers_for(self, absolute: str) -> dict[str, str]:
        """The Authorization header for ``absolute`` when it is on Label Studio and a token is set."""
        if not self.token or not self.url:
            return {}
        own = urlsplit(self.url)
        there = urlsplit(absolute)
        if (there.scheme, there.netloc) != (own.scheme, own.netloc):
            return {}
        scheme = "Bearer" if self.token.count(".") == 2 else "Token"  # a JWT access token, or the legacy token
        return {"Authorization": f"{scheme} {self.token}"}

    def resolve(self, ref: str) -> str:
        """The absolute URL of a task's image reference. Raises BadImage."""
        ref = ref.strip()
        parts = urlsplit(ref)
        if parts.scheme in ("http", "https"):
            return ref
        if parts.scheme:
            raise BadImage(
                f"{_short(ref)}: {parts.scheme}:// images must be served by Label Studio "
                "(connect the storage with presigned URLs)"
            )
        if not self.url:
            raise BadImage(f"{_short(ref)} is on Label Studio: set LABEL_STUDIO_URL (or serve --label-studio-url)")
        return urljoin(self.url.rstrip("/") + "/", ref.lstrip("/"))

    def fetch(self, ref: str) -> bytes:
        """The bytes of the image ``ref`` names. Raises BadImage with one line."""
        import requests

        if not isinstance(ref, str) or not ref.strip():
            raise BadImage("the task has no image URL")
        if ref.startswith("data:"):
            return self._data_uri(ref)
        url = self.resolve(ref)
        headers = self.headers_for(url)
        try:
            with requests.get(
                url, headers=headers, stream=True, timeout=self.timeout, allow_redirects=True
            ) as response:
                if response.status_code in (401, 403):
                    why = (
                        "no token: set LABEL_STUDIO_API_KEY (or serve --label-studio-key)"
                        if not headers
                        else "the token was refused: check LABEL_STUDIO_API_KEY"
                    )
                    raise BadImage(f"{_short(ref)}: HTTP {response.status_code} ({why})")
                if response.status_code != 200:
                    raise BadImage(f"{_short(ref)}: HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise BadImage(f"{_short(ref)}: {int(declared):,} bytes is over the {self.max_bytes:,}-byte limit")
                data = bytearray()
                for chunk in response.iter_content(CHUNK):
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise BadImage(f"{_short(ref)}: over the {self.max_bytes:,}-byte limit")
                return bytes(data)
        except requests.RequestException as exc:
            raise BadImage(f"{_short(ref)}: cannot fetch ({type(exc).__name__})") from None

    def _data_uri(self, ref: str) -> bytes:
        head, _, payload = ref.partition(",")
        if ";base64" not in head:
            raise BadImage("data URI is not base64")
        if len(payload) > self.max_bytes * 4 // 3 + 4:
            raise BadImage(f"data URI is over the {self.max_bytes:,}-byte limit")
        try:
            return base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise BadImage("data URI is not valid base64") from None


def _short(ref: str, width: int = 80) -> str:
    return ref if len(ref) <= width else ref[: width - 3] + "..."
