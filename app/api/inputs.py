"""Request bodies: JSON (images as base64 strings) or multipart uploads, read into one shape.

Each endpoint that takes images accepts both: ``application/json`` validated by the
pydantic models below, or ``multipart/form-data`` whose file parts are the images and
whose plain fields are the same names as the JSON keys. Either way the route gets the
validated model and a list of :class:`Upload` (name, bytes); decoding the bytes is left
to the project's one decoder (``index.imaging``, via the Workspace), pixel limit included.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from app.api.errors import first_error
from index.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Upload:
    """One image sent with a request: its name (file name or ``upload N``) and raw bytes."""

    name: str
    data: bytes


class IdentifyRequest(BaseModel):
    """``POST /identify``: images (base64) and/or catalog crop ids; one answer per item, images first."""

    model_config = ConfigDict(extra="forbid")
    images: list[str] = Field(default_factory=list, description="Images as base64 (a data: URL prefix is allowed).")
    names: list[str] | None = Field(None, description="A name per image, echoed back (default 'upload N').")
    crops: list[int] = Field(default_factory=list, description="Catalog crop ids to identify.")
    k: int = Field(3, ge=1, le=100, description="Candidate species listed per item.")


class SearchRequest(BaseModel):
    """``POST /search``: the crops nearest one image or one catalog crop, inside an optional filter."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(None, description="Query image as base64 (or send `crop`).")
    crop: int | None = Field(None, description="Query with a catalog crop id (left out of its own answer).")
    k: int = Field(10, ge=1, le=1000, description="Number of neighbours.")
    where: str | None = Field(
        None,
        max_length=2000,
        description='Filter, as `oceanid search --where`: species="Chromis chrysura", '
        "depth=100..500, date>=2020-06, split in (val, test); and / or.",
    )
    space: Literal["tuned", "general", "fused"] | None = Field(
        None, description="Vector space searched (default: fused where the model has a general space, else tuned)."
    )


class SpeciesRequest(BaseModel):
    """``POST /species``: add a species from a few example crops, without retraining."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=200, description="The new species' name.")
    genus: str | None = Field(None, max_length=200)
    family: str | None = Field(None, max_length=200)
    images: list[str] = Field(default_factory=list, description="Example crops as base64 (multipart: files).")


def form_schema(model: type[BaseModel], files: str) -> dict[str, Any]:
    """The multipart form of ``model`` for OpenAPI: its fields, with ``files`` as binary parts."""
    schema = model.model_json_schema()
    props = {k: v for k, v in schema.get("properties", {}).items() if k not in ("images", "image")}
    props[files] = {"type": "array", "items": {"type": "string", "format": "binary"}}
    return {"type": "object", "properties": props}


def request_body(model: type[BaseModel], files: str = "file") -> dict[str, Any]:
    """``openapi_extra`` documenting both content types an endpoint reads."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": model.model_json_schema()},
                "multipart/form-data": {"schema": form_schema(model, files)},
            },
        }
    }


def from_base64(text: str, label: str) -> bytes:
    """A base64 string (whitespace and a ``data:...;base64,`` prefix allowed) -> bytes. Raises InvalidInput."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{label} is not valid base64") from None


async def read_request(request: Request, model: type[M], max_files: int) -> tuple[M, list[Upload]]:
    """Parse a JSON or multipart body into ``model`` and the images it carries.

    Raises InvalidInput (bad JSON, bad fields, bad base64, an unsupported content type, more
    than ``max_files`` images)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form(max_files=max_files, max_fields=max_files + 20)
        fields: dict[str, Any] = {}
        uploads = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.append(Upload(value.filename or f"upload {len(uploads) + 1}", await value.read()))
            elif key == "crops":
                fields.setdefault(key, []).extend(v for v in value.replace(",", " ").split())
            elif key == "names":
                fields.setdefault(key, []).append(value)
            else:
                fields[key] = value
        try:
            parsed = model.model_validate(fields)
        except ValidationError as exc:
            raise InvalidInput(first_error(exc.errors())) from None
        return parsed, uploads
    if ctype not in ("application/json", ""):
        raise InvalidInput(f"unsupported content type {ctype!r}; send application/json or multipart/form-data")
    body = await request.body()
    try:
        parsed = model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise InvalidInput(first_error(exc.errors())) from None
    images = getattr(parsed, "images", None) or ([parsed.image] if getattr(parsed, "image", None) else [])
    if len(images) > max_files:
        raise InvalidInput(f"{len(images)} images in one request; at most {max_files}")
    names = list(getattr(parsed, "names", None) or [])
    uploads = [
        Upload(names[n] if n < len(names) else f"upload {n + 1}", from_base64(text, f"image {n + 1}"))
        for n, text in enumerate(images)
    ]
    return parsed, uploads
