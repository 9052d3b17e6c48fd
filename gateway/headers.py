"""Header rewriting between client and upstream.

Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, so they never cross the proxy:
Connection and every header it names, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade and
Proxy-*. The client's own X-Forwarded-*/Forwarded are replaced (the gateway is the edge), Host is
the upstream's, and the request id goes both ways.
"""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
    }
)
# Not forwarded upstream: set by the gateway itself, or answered by it already (Expect).
_REQUEST_DROP = HOP_BY_HOP | {
    b"host",
    b"expect",
    b"forwarded",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-forwarded-port",
    b"x-request-id",
}
# The WebSocket handshake headers are the upstream client's own.
_WEBSOCKET_DROP = _REQUEST_DROP | {
    b"sec-websocket-key",
    b"sec-websocket-version",
    b"sec-websocket-extensions",
    b"sec-websocket-protocol",
    b"sec-websocket-accept",
}
# The gateway's server writes its own Date and Server, and its own request id.
_RESPONSE_DROP = HOP_BY_HOP | {b"date", b"server", b"x-request-id"}


_HTTP_SCHEME = {"ws": "http", "wss": "https"}


def _connection_tokens(value: bytes) -> frozenset[bytes]:
    return frozenset(token.strip().lower() for token in value.split(b","))


# What `Connection` usually says: nothing beyond what is dropped anyway.
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b"upgrade"})


def upstream_request_headers(
    scope_headers: list[tuple[bytes, bytes]],
    *,
    client_ip: str,
    scheme: str,
    request_id: str,
    websocket: bool = False,
) -> list[tuple[str, str]]:
    drop = _WEBSOCKET_DROP if websocket else _REQUEST_DROP
    out: list[tuple[str, str]] = []
    host = ""
    named: frozenset[bytes] = frozenset()
    for name, value in scope_headers:
        if name in drop:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"connection":
                named |= _connection_tokens(value)
            continue
        out.append((name.decode("latin-1"), value.decode("latin-1")))
    if named - _PLAIN_CONNECTION:
        # Rare: the client named its own hop-by-hop headers; they stop here too.
        extra = {token.decode("latin-1") for token in named}
        out = [(name, value) for name, value in out if name not in extra]
    out.append(("x-forwarded-for", client_ip))
    out.append(("x-forwarded-proto", _HTTP_SCHEME.get(scheme, scheme)))
    if host:
        out.append(("x-forwarded-host", host))
    out.append(("x-request-id", request_id))
    return out


def client_response_headers(
    raw_headers: Iterable[tuple[bytes, bytes]], *, request_id: bytes
) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    named: frozenset[bytes] = frozenset()
    for name, value in raw_headers:
        lower = name.lower()
        if lower in _RESPONSE_DROP:
            if lower == b"connection":
                named |= _connection_tokens(value)
            continue
        out.append((lower, value))
    if named - _PLAIN_CONNECTION:
        out = [(name, value) for name, value in out if name not in named]
    out.append((b"x-request-id", request_id))
    return out
