"""The request id: taken from the client when sane, else made; kept in a contextvar for the logs,
outbound HTTP calls and message envelopes; echoed on every response."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_HEADER_BYTES = HEADER.lower().encode()
_SANE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_or_make(candidate: str | None) -> str:
    """The client's id if it is short and plain; otherwise a fresh one (ids end up in logs)."""
    if candidate and _SANE.match(candidate):
        return candidate
    return new_request_id()


def from_scope(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == _HEADER_BYTES:
            return accept_or_make(value.decode("latin-1"))
    return new_request_id()


class RequestIdMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): streaming bodies and WebSockets pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = from_scope(scope)
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
