"""The HTTP proxy: a plain ASGI callable (no framework routing, no response classes) that forwards
a request to one instance of its service and streams both bodies.

The common case (a plain-HTTP service, a body that is absent or has a Content-Length, any method
but HEAD) goes through the gateway's own lean client (`gateway.upstream_client`); the rest
(chunked uploads, HEAD, https services) through aiohttp's.

Small bodies (the common case) are moved in one piece; larger ones flow chunk by chunk with
backpressure both ways, so memory stays flat whatever their size. Content-Length passes through
when known (no re-chunking), and bodies are never decoded (compressed bytes pass untouched).

This is the gateway's hot path: it keeps its own request id, metrics and access log rather than
going through middleware layers, and it skips every check that has nothing to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import ClientSession
from starlette.types import Receive, Scope, Send
from yarl import URL

from gateway.accesslog import AccessLog
from gateway.guard import Guard, bearer_token
from gateway.headers import (
    client_response_headers,
    upstream_request_head,
    upstream_request_headers,
)
from gateway.policy import Access, Limits, access_for
from gateway.problems import send_problem
from gateway.upstream_client import (
    UpstreamBroken,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamResponse,
)
from gateway.upstreams import UpstreamPool
from shared.errors import ProblemError
from shared.metrics import LATENCY, REQUESTS
from shared.request_id import accept_or_make, request_id_var

logger = logging.getLogger(__name__)

# Bodies up to this size are read whole and sent in one write; larger ones are streamed.
SMALL_BODY = 64 * 1024
# Status reported in logs and metrics when the client left before an answer was sent.
CLIENT_CLOSED = 499
_NO_BODY_STATUS = frozenset({204, 304})
_RETRYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class Reject(Exception):
    """Answer with a problem+json instead of forwarding (or instead of a broken answer)."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


@dataclass
class Runtime:
    """What the lifespan opens for the proxy: the upstream clients, the request guard, the log."""

    session: ClientSession | None = None
    client: UpstreamClient | None = None
    guard: Guard | None = None
    access_log: AccessLog | None = None


@dataclass
class _StreamedBody:
    """A request body read from the client as the upstream takes it, counted against the limit."""

    receive: Receive
    first: bytes
    more: bool
    limit: int
    started: bool = False
    finished: bool = False
    too_large: bool = False
    client_gone: bool = False
    size: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        chunk, more = self.first, self.more
        while True:
            self.size += len(chunk)
            if self.size > self.limit:
                self.too_large = True
                raise BodyTooLarge
            if chunk:
                yield chunk
            if not more:
                self.finished = True
                return
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                raise ClientGone
            chunk, more = message.get("body", b""), message.get("more_body", False)


class _Metrics:
    """Prometheus children cached per (method, route, status): `labels()` takes a lock and
    builds a key on every call, which the hot path can do without."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def record(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                REQUESTS.labels("gateway", method, route, str(status)),
                LATENCY.labels("gateway", method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)


class HttpProxy:
    def __init__(
        self,
        *,
        pools: dict[str, UpstreamPool],
        limits: dict[str, Limits],
        runtime: Runtime,
        connect_timeout_s: float,
        checks_public_routes: bool,
    ) -> None:
        self.pools = pools
        self.limits = limits
        self.runtime = runtime
        self.connect_timeout_s = connect_timeout_s
        # With no per-address limit, a public route has nothing to check in Redis.
        self.checks_public_routes = checks_public_routes
        self.metrics = _Metrics()
        self.routes = {service: f"/{service}" for service in pools}
        # Services whose every instance is plain HTTP, which the lean client speaks.
        self.lean = {
            service: all(i.base_url.startswith("http://") for i in pool.instances)
            for service, pool in pools.items()
        }
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            # No total: a large body may take long; what is bounded is silence from the upstream.
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.connect_timeout_s, sock_read=seconds
            )
            self._timeouts[seconds] = timeout
        return timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send, service: str) -> None:
        started = time.perf_counter()
        request_id = _request_id(scope["headers"])
        context = request_id_var.set(request_id)
        status = CLIENT_CLOSED
        try:
            try:
                status = await self._forward(scope, receive, send, service, request_id)
            except Reject as reject:
                status = reject.status
                await send_problem(
                    send,
                    reject.status,
                    reject.detail,
                    instance=scope["path"],
                    request_id=request_id.encode(),
                    headers=reject.headers,
                )
            except Exception:
                logger.exception("proxying %s %s failed", scope["method"], scope["path"])
                status = 500
                await _answer_500(send, scope["path"], request_id.encode())
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"]
            self.metrics.record(method, self.routes[service], status, elapsed)
            access_log = self.runtime.access_log
            if access_log is not None:
                access_log.write(
                    request_id, f"{method} {scope['path']} {status} {elapsed * 1000:.1f}ms"
                )
            request_id_var.reset(context)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, service: str, request_id: str
    ) -> int:
        method: str = scope["method"]
        path: str = scope["path"]
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        limits = self.limits[service]
        pool = self.pools[service]
        if not pool.deployed:
            raise Reject(503, f"The {service} service is not deployed here", {"Retry-After": "60"})

        content_length: int | None = None
        has_body = False
        for name, value in headers:
            if name == b"content-length":
                try:
                    content_length = int(value)
                except ValueError:
                    raise Reject(400, "Content-Length is not a number") from None
                has_body = content_length > 0
            elif name == b"transfer-encoding":
                has_body = True
        if content_length is not None and content_length > limits.max_body_bytes:
            raise Reject(413, _too_large(limits.max_body_bytes))

        client = scope.get("client")
        client_ip = client[0] if client else "unknown"
        await self._check(method, path, headers, client_ip)

        body: bytes | _StreamedBody | None = None
        if has_body:
            try:
                body = await _read_body(receive, content_length, limits.max_body_bytes)
            except ClientGone:
                return CLIENT_CLOSED
            except BodyTooLarge:
                raise Reject(413, _too_large(limits.max_body_bytes)) from None

        raw_target: bytes = scope.get("raw_path") or path.encode()
        if scope["query_string"]:
            raw_target += b"?" + scope["query_string"]
        timeout_s = limits.timeout_for(method, path)
        if (
            self.lean[service]
            and method != "HEAD"
            and (content_length is not None or not has_body)
            and self.runtime.client is not None
        ):
            lean_response, streamed = await self._send_lean(
                service,
                pool,
                method,
                raw_target,
                headers,
                client_ip,
                scope["scheme"],
                request_id,
                body,
                timeout_s,
                limits,
            )
            if lean_response is None:
                return CLIENT_CLOSED
            return await _relay_lean(lean_response, receive, send, streamed, request_id.encode())

        forwarded = upstream_request_headers(
            headers, client_ip=client_ip, scheme=scope["scheme"], request_id=request_id
        )
        target = raw_target.decode("latin-1")
        timeout = self._timeout(timeout_s)
        response, streamed = await self._send_upstream(
            service, pool, method, target, forwarded, body, timeout, limits
        )
        if response is None:
            return CLIENT_CLOSED
        return await _relay(response, method, receive, send, streamed, request_id.encode())

    async def _check(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], client_ip: str
    ) -> None:
        needs_token = access_for(method, path) is Access.TOKEN
        if not needs_token and not self.checks_public_routes:
            return
        guard = self.runtime.guard
        assert guard is not None
        token = bearer_token(headers, b"", websocket=False) if needs_token else None
        try:
            await guard.check(client_ip=client_ip, token=token, needs_token=needs_token)
        except ProblemError as exc:
            raise Reject(exc.status, exc.detail, exc.headers) from None

    async def _send_lean(
        self,
        service: str,
        pool: UpstreamPool,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        client_ip: str,
        scheme: str,
        request_id: str,
        body: bytes | _StreamedBody | None,
        timeout_s: float,
        limits: Limits,
    ) -> tuple[UpstreamResponse | None, _StreamedBody | None]:
        """As `_send_upstream`, with the lean client."""
        client = self.runtime.client
        assert client is not None
        streamed = body if isinstance(body, _StreamedBody) else None
        whole = body if isinstance(body, bytes) else None
        # Repeated on a new connection if a kept-alive one was closed under it: only when the
        # method allows it and the body can be sent again.
        may_retry = streamed is None and method in _RETRYABLE_METHODS
        for instance in pool.candidates():
            found = client.target(instance.base_url)
            assert found is not None
            host, host_header, prefix = found
            head = upstream_request_head(
                method,
                prefix + target if prefix else target,
                host_header,
                headers,
                client_ip=client_ip,
                scheme=scheme,
                request_id=request_id,
            )
            data = streamed.chunks() if streamed is not None else whole
            try:
                response = await client.request(
                    host, head, data, timeout=timeout_s, may_retry=may_retry
                )
                return response, streamed
            except UpstreamConnectError:
                pool.mark_down(instance)
                if streamed is not None and streamed.started:
                    raise Reject(502, f"The {service} service could not be reached") from None
                continue
            except (BodyTooLarge, ClientGone, TimeoutError, UpstreamBroken) as exc:
                _raise_failure(service, instance.base_url, exc, streamed, limits)
                return None, streamed
        raise _unreachable(service, pool)

    async def _send_upstream(
        self,
        service: str,
        pool: UpstreamPool,
        method: str,
        target: str,
        forwarded: list[tuple[str, str]],
        body: bytes | _StreamedBody | None,
        read_timeout: aiohttp.ClientTimeout,
        limits: Limits,
    ) -> tuple[aiohttp.ClientResponse | None, _StreamedBody | None]:
        """The upstream's response (None when the client left), trying instances in turn."""
        session = self.runtime.session
        assert session is not None
        streamed = body if isinstance(body, _StreamedBody) else None
        for instance in pool.candidates():
            url = URL(instance.base_url + target, encoded=True)
            try:
                response = await _request(session, method, url, forwarded, body, read_timeout)
                return response, streamed
            except aiohttp.ClientConnectorError:
                pool.mark_down(instance)
                if streamed is not None and streamed.started:
                    raise Reject(502, f"The {service} service could not be reached") from None
                continue
            except (BodyTooLarge, ClientGone, TimeoutError, aiohttp.ClientError) as exc:
                _raise_failure(service, instance.base_url, exc, streamed, limits)
                return None, streamed
        raise _unreachable(service, pool)


def _raise_failure(
    service: str,
    base_url: str,
    exc: Exception,
    streamed: _StreamedBody | None,
    limits: Limits,
) -> None:
    """Turns a failed forward into the client's answer (413, 504, 502); returns only when the
    client itself left, and there is nobody to answer."""
    if isinstance(exc, BodyTooLarge) or (streamed and streamed.too_large):
        raise Reject(413, _too_large(limits.max_body_bytes)) from None
    if isinstance(exc, ClientGone) or (streamed and streamed.client_gone):
        return
    if isinstance(exc, TimeoutError):
        raise Reject(504, f"The {service} service did not answer in time") from None
    logger.warning("%s upstream %s failed: %r", service, base_url, exc)
    raise Reject(502, f"The {service} service failed to answer") from None


def _unreachable(service: str, pool: UpstreamPool) -> Reject:
    return Reject(
        503,
        f"The {service} service is not reachable",
        {"Retry-After": str(pool.retry_after())},
    )


async def _request(
    session: ClientSession,
    method: str,
    url: URL,
    headers: list[tuple[str, str]],
    body: bytes | _StreamedBody | None,
    timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's own read timeout, per route)
) -> aiohttp.ClientResponse:
    data = body.chunks() if isinstance(body, _StreamedBody) else body
    try:
        return await session.request(
            method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
        )
    except aiohttp.ServerDisconnectedError:
        # A kept-alive connection the upstream closed just as it was reused: the request never
        # arrived, so it is repeated once on a fresh connection when its body can be replayed.
        if method not in _RETRYABLE_METHODS or isinstance(body, _StreamedBody):
            raise
        return await session.request(
            method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
        )


async def _read_body(
    receive: Receive, content_length: int | None, limit: int
) -> bytes | _StreamedBody:
    """A small body whole; a large or unsized one as a stream that the upstream pulls."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    first: bytes = message.get("body", b"")
    more: bool = message.get("more_body", False)
    if content_length is None or content_length > SMALL_BODY:
        return _StreamedBody(receive, first, more, limit)
    parts = [first]
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(parts)


async def _relay(
    response: aiohttp.ClientResponse,
    method: str,
    receive: Receive,
    send: Send,
    body: _StreamedBody | None,
    request_id: bytes,
) -> int:
    status = response.status
    headers = client_response_headers(response.raw_headers, request_id=request_id)
    started = False
    try:
        length = response.content_length
        if method == "HEAD" or status in _NO_BODY_STATUS or length == 0:
            started = True
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
        elif length is not None and length <= SMALL_BODY:
            content = await response.read()
            started = True
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})
        else:
            started = True
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await _stream_body(response.content.iter_any(), response.close, receive, send, body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        response.close()
        if not started:
            raise Reject(502, "The upstream broke off its answer") from None
        # Mid-body nothing honest can be said any more: returning with the body unfinished makes
        # the server close the connection short, which the client sees as a truncated response.
        logger.warning("upstream response broke off: %r", exc)
    finally:
        response.release()
    return status


async def _relay_lean(
    response: UpstreamResponse,
    receive: Receive,
    send: Send,
    body: _StreamedBody | None,
    request_id: bytes,
) -> int:
    status = response.status
    headers = client_response_headers(response.headers, request_id=request_id)
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if response.body is not None:
            await send({"type": "http.response.body", "body": response.body})
        else:
            await _stream_body(response.chunks(), response.release, receive, send, body)
    except (UpstreamBroken, TimeoutError) as exc:
        # Only a streamed body can break off, after the answer began: returning with the body
        # unfinished makes the server close the connection short (a truncated response).
        logger.warning("upstream response broke off: %r", exc)
    finally:
        response.release()
    return status


async def _stream_body(
    chunks: AsyncIterator[bytes],
    close: Callable[[], None],
    receive: Receive,
    send: Send,
    body: _StreamedBody | None,
) -> None:
    # uvicorn drops writes once the client has gone; a watcher on receive() notices that, so a
    # large download from the upstream stops instead of running on for nobody.
    watcher: asyncio.Task[None] | None = None
    if body is None or body.finished:
        watcher = asyncio.ensure_future(_until_disconnect(receive))
    try:
        async for chunk in chunks:
            if watcher is not None and watcher.done():
                close()
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        if watcher is not None:
            watcher.cancel()


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _answer_500(send: Send, path: str, request_id: bytes) -> None:
    """A problem+json 500 if nothing was sent yet; once the answer has begun, the server cuts
    the connection short instead (a second start is refused, which is all this can tell)."""
    with contextlib.suppress(RuntimeError):
        await send_problem(send, 500, "The gateway failed", instance=path, request_id=request_id)


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's request id when sane, else a new one: 32 random hex digits, as
    `shared.request_id` makes them, without building a UUID object (2 µs a request)."""
    for name, value in headers:
        if name == b"x-request-id":
            return accept_or_make(value.decode("latin-1"))
    return os.urandom(16).hex()


def _too_large(limit: int) -> str:
    return f"The request body is larger than this route accepts ({limit} bytes)"
