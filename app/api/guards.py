"""Two pure ASGI middlewares: the bearer token and the request size limit.

Written here because Starlette has neither: its middleware stack has no body-size
cap (uvicorn limits only header size), and an auth dependency would not cover
``/docs``, ``/openapi.json`` or unknown routes. Both answer with the API's JSON
error shape before the request reaches a route.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body passed the limit while it was being read (raised inside ``receive``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is over the {limit:,}-byte limit")
        self.limit = limit


async def send_error(
    send: Send, status: int, message: str, kind: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Send the API's JSON error ``{"error": message, "type": kind}`` with ``status``."""
    body = json.dumps({"error": message, "type": kind}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def basic_password(encoded: bytes) -> bytes:
    """The password of an HTTP basic ``Authorization`` value (base64 ``user:password``); b"" if malformed."""
    try:
        return base64.b64decode(encoded, validate=True).partition(b":")[2]
    except (binascii.Error, ValueError):
        return b""


class TokenGuard:
    """Every HTTP request must carry ``Authorization: Bearer <token>`` (or basic auth with the token
    as its password: what Label Studio sends to an ML backend); compared in constant
    time (``hmac.compare_digest``) so the token cannot be guessed byte by byte from timings."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
            elif name == b"authorization" and value[:6].lower() == b"basic ":
                given = basic_password(value[6:].strip())  # Label Studio's ML backend auth: any user, the token
        if not hmac.compare_digest(given, self.token):
            log.warning("refused %s %s: %s token", scope.get("method"), scope.get("path"), "wrong" if given else "no")
            return await send_error(
                send,
                401,
                "missing or wrong token — send the header "
                "'Authorization: Bearer <token>' given to `oceanid serve --token`",
                "Unauthorized",
                ((b"www-authenticate", b"Bearer"),),
            )
        return await self.app(scope, receive, send)


class BodyLimit:
    """Refuse a request whose body is over ``limit`` bytes: at once from Content-Length,
    else while it streams in (chunked uploads), by raising :class:`BodyTooLarge` from
    ``receive`` (the app's handler turns it into a 413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await send_error(send, 400, "Content-Length is not a number", "InvalidInput")
                if declared > self.limit:
                    return await send_error(send, 413, str(BodyTooLarge(self.limit)), "BodyTooLarge")
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        return await self.app(scope, counted, send)
