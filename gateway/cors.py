"""CORS for every path the gateway serves, decided at the edge: preflights are answered here and
never reach a service; other answers to an allowed origin get the Access-Control-* headers."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.problems import send_problem
from shared.request_id import from_scope

ALLOW_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
EXPOSE_HEADERS = b"X-Request-ID, Retry-After, Location, Content-Disposition"


class Cors:
    def __init__(self, app: ASGIApp, *, origins: tuple[str, ...], max_age_s: int) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = frozenset(o.encode("latin-1") for o in origins if o != "*")
        self.max_age = str(max_age_s).encode()
        self.enabled = bool(origins)

    def allows(self, origin: bytes) -> bool:
        return self.any_origin or origin in self.origins

    def _origin_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        if origin in self.origins:
            # Credentials (the access-token cookie) only for origins named in the configuration.
            return [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-credentials", b"true"),
                (b"vary", b"Origin"),
            ]
        return [(b"access-control-allow-origin", b"*")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = b""
        preflight_method = b""
        requested_headers = b""
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight_method = value
            elif name == b"access-control-request-headers":
                requested_headers = value
        if not origin:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and preflight_method:
            await self._preflight(scope, send, origin, requested_headers)
            return
        if not self.allows(origin):
            await self.app(scope, receive, send)
            return
        extra = [*self._origin_headers(origin), (b"access-control-expose-headers", EXPOSE_HEADERS)]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, send: Send, origin: bytes, requested: bytes) -> None:
        request_id = from_scope(scope).encode()
        if not self.allows(origin):
            await send_problem(
                send,
                403,
                "This origin may not call the API from a browser",
                instance=scope["path"],
                request_id=request_id,
            )
            return
        headers = [
            *self._origin_headers(origin),
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-max-age", self.max_age),
            (b"x-request-id", request_id),
            (b"content-length", b"0"),
        ]
        if requested:
            headers.append((b"access-control-allow-headers", requested))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
