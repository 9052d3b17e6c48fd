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


def upstream_request_head(
    method: str,
    target: bytes,
    host: bytes,
    scope_headers: list[tuple[bytes, bytes]],
    *,
    client_ip: str,
    scheme: str,
    request_id: str,
) -> bytes:
    """The whole HTTP/1.1 request head for the upstream (the same headers as
    `upstream_request_headers`, Host the upstream's), ready to write. Names and values come from
    the server's parser, which refuses CR and LF in them, and the request id is checked or made."""
    parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", host, b"\r\n"]
    client_host = b""
    named: frozenset[bytes] = frozenset()
    for name, value in scope_headers:
        if name in _REQUEST_DROP:
            if name == b"host":
                client_host = value
            elif name == b"connection":
                named |= _connection_tokens(value)
            continue
        parts += (name, b": ", value, b"\r\n")
    if named - _PLAIN_CONNECTION:
        # Rare: the client named its own hop-by-hop headers; they stop here too.
        return upstream_request_head(
            method,
            target,
            host,
            [
                (name, value)
                for name, value in scope_headers
                if name not in named and name != b"connection"
            ],
            client_ip=client_ip,
            scheme=scheme,
            request_id=request_id,
        )
    parts += (b"x-forwarded-for: ", client_ip.encode("latin-1"), b"\r\n")
    parts += (b"x-forwarded-proto: ", _HTTP_SCHEME.get(scheme, scheme).encode("latin-1"), b"\r\n")
    if client_host:
        parts += (b"x-forwarded-host: ", client_host, b"\r\n")
    parts += (b"x-request-id: ", request_id.encode("latin-1"), b"\r\n\r\n")
    return b"".join(parts)
