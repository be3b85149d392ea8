"""Library errors -> JSON ``{"error": one line, "type": name}`` with a status code.

The line is :func:`index.errors.describe`, the same the CLI prints after ``error:``.
No traceback ever reaches a client: anything unexpected is a 500 with one line,
and its traceback goes to the server log.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.api.guards import BodyTooLarge
from app.workspace import Overloaded
from index.errors import (
    BadImage,
    CatalogBusy,
    EmptyIndex,
    FilterError,
    IndexMismatch,
    InvalidInput,
    ModelError,
    NotFound,
    OceanidError,
    SourceError,
    describe,
)

log = logging.getLogger(__name__)


class ReadOnly(OceanidError):
    """A write was asked of a server started with ``--read-only``."""

    hint = "this server was started with --read-only; use the CLI or a server without it"


#: Status code of each library error type (the nearest class in the MRO wins).
STATUS: dict[type[OceanidError], int] = {
    BadImage: 422,
    FilterError: 422,
    InvalidInput: 422,
    SourceError: 422,
    ReadOnly: 403,
    NotFound: 404,
    EmptyIndex: 409,
    IndexMismatch: 409,
    CatalogBusy: 503,
    Overloaded: 503,
    ModelError: 500,
    OceanidError: 500,
}


def status_of(exc: OceanidError) -> int:
    """The status code for a library error (500 for an OceanidError type not in STATUS)."""
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)


def error_response(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": message, "type": kind}, status_code=status)


def first_error(errors: list[dict]) -> str:
    """Pydantic's first complaint as one line: ``k: Input should be greater than or equal to 1``."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where + ': ' if where else ''}{first.get('msg', 'invalid')}{more}"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(OceanidError)
    async def library_error(_: Request, exc: OceanidError) -> JSONResponse:
        response = error_response(status_of(exc), describe(exc), type(exc).__name__)
        if isinstance(exc, Overloaded):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(BodyTooLarge)
    async def too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(413, str(exc), "BodyTooLarge")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, first_error(exc.errors()), "InvalidInput")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail), "type": "HTTPError"},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(
            500, f"internal error ({type(exc).__name__}) — the server log has the details", "InternalError"
        )
