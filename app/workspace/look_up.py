"""What is this, and what looks like it: one query image (or catalog crop) answered and searched from ONE
embedding (the explorer's Identify page; issue 25's ``look_up``, replacing the page's hand-off of a raw
embedding from ``embed_query`` into ``identify(vectors=...)``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.workspace.identification import Identification
from index.errors import BadImage

if TYPE_CHECKING:
    from index.catalog.lookup import CropHit


@dataclass(frozen=True)
class LookUp:
    """One query's answer and the crops most like it (none when the image could not be read)."""

    identification: Identification
    similar: tuple[CropHit, ...] = ()
    image: Any = None  # the decoded query image (to show it), None for a catalog crop or an unreadable image

    def to_dict(self) -> dict[str, Any]:
        return {"identification": self.identification.to_dict(), "similar": [h.to_dict() for h in self.similar]}


def look_up(
    ws: Any, query: Any, name: str, k: int, where: str | None, decode: str, model: str | None, top: int = 5
) -> LookUp:
    """``query``: image bytes, a decoded image or a file (embedded once, then identified and searched with
    that embedding), or a catalog crop id (identified and searched from its stored vectors, so the crop
    itself is left out of its own gallery). ``ws``: the Workspace (its engines, spaces and filter cache)."""
    from index.imaging import decode_bytes

    if isinstance(query, int):
        found = ws.identify_crops([query], k=top, model=model, decode=decode)[0]
        return LookUp(found, tuple(ws.search(query, k=k, where=where, model=model)) if not found.error else ())
    try:
        image = decode_bytes(query, name) if isinstance(query, bytes) else query
        vector = ws.embed_query(image, model)
    except BadImage as exc:
        return LookUp(Identification.failed(name, str(exc)))
    found = ws.identify([image], k=top, model=model, names=[name], vectors=vector, decode=decode)[0]
    return LookUp(found, tuple(ws.search(vector, k=k, where=where, model=model)), image)
