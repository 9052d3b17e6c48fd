"""A lean HTTP/1.1 client for the proxy's common case: a plain-HTTP upstream, a request body that is
absent or has a Content-Length, any method but HEAD.

aiohttp's client is general (cookies, redirects, auth, tracing, auto headers, multipart, proxies)
and spends about as much CPU per forwarded request as the whole rest of the gateway. The proxy
needs none of that: it has the request head as bytes already and passes the answer on untouched.
This client writes the head in one piece, parses the answer with httptools (llhttp, the parser
uvicorn uses) on an asyncio protocol, and keeps connections alive per upstream. aiohttp stays in
charge of what this does not do (HEAD, chunked uploads, https).

What it guarantees:
- Content-Length, chunked and read-until-close answers; `Connection: close` is honoured, and a
  connection goes back to the pool only after its answer was read to the end.
- A pooled connection that the upstream closed while it sat idle is never used; one that the
  upstream closed just as it was reused (no byte of an answer came back) is retried once on a new
  connection when the caller says the request may be repeated.
- Timeouts: connecting, and silence from the upstream while an answer is awaited.
- Answers larger than a small body are handed over chunk by chunk; reading from the upstream pauses
  while more than `HIGH_WATER` bytes wait for the client, so memory stays flat.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

# Answers with a Content-Length up to this are read whole and handed over in one piece.
SMALL_BODY = 64 * 1024
# Streamed answers: reading from the upstream pauses above HIGH_WATER bytes not yet taken.
HIGH_WATER = 256 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


class UpstreamConnectError(Exception):
    """No connection could be opened (refused, unreachable): another instance may be tried."""


class UpstreamBroken(Exception):
    """The upstream closed the connection mid-way or answered something that is not HTTP."""


class _Stale(Exception):
    """A reused connection that was closed before any byte of the answer came back."""


class UpstreamResponse:
    """An answer: status and raw headers (names lower-cased), and either the whole body (`body`,
    for small answers) or a stream to read with `chunks()`. `release()` must be called once the
    answer is done with, read to the end or not."""

    __slots__ = ("_connection", "body", "headers", "status")

    def __init__(
        self,
        connection: _Connection,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> None:
        self._connection: _Connection | None = connection if body is None else None
        self.status = status
        self.headers = headers
        self.body = body

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (only for answers not read whole)."""
        connection = self._connection
        assert connection is not None
        while True:
            chunk = await connection.read_chunk()
            if not chunk:
                return
            yield chunk

    def release(self) -> None:
        """Return the connection to the pool if its answer was read to the end, else close it."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.finish()


class _Connection(asyncio.Protocol):
    """One keep-alive connection to an upstream; one request at a time."""

    def __init__(self, host: _Host) -> None:
        self.host = host
        self.loop = host.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.used = False
        self.pooled = False
        self.idle_since = 0.0
        self.timeout = 0.0
        # The answer being read.
        self.active = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.length: int | None = None
        self.chunked = False
        self.whole = False
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.responded = False
        self.parts: list[bytes] = []
        self.buffered = 0
        self.reading_paused = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.last_read = 0.0
        self.drain_waiter: asyncio.Future[None] | None = None
        self.writing_paused = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without deriving from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active:
            # Nothing was asked: an upstream talking out of turn cannot be trusted any more.
            self._close()
            return
        self.last_read = self.loop.time()
        self.responded = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(UpstreamBroken(f"invalid answer: {exc}"))
            self._close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost tells the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.active:
            if self.headers_done and not self.complete and self._ends_at_eof():
                self.on_message_complete()
            elif not self.complete:
                if self.used and not self.responded:
                    self._fail(_Stale())
                else:
                    self._fail(UpstreamBroken("the upstream closed the connection"))
        else:
            self.host.forget(self)
        drain = self.drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        drain = self.drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            # A second answer to one request: the upstream cannot be trusted any more.
            raise UpstreamBroken("more than one answer")
        self.headers = []
        self.length = None
        self.chunked = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length":
            try:
                self.length = int(value)
            except ValueError:
                raise UpstreamBroken("invalid Content-Length") from None
        elif name == b"transfer-encoding":
            self.chunked = b"chunked" in value.lower()
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            # An interim answer (103 Early Hints): the final one follows on the same connection.
            return
        self.status = status
        self.headers_done = True
        length = self.length
        self.whole = status in _NO_BODY_STATUS or (
            length is not None and length <= SMALL_BODY and not self.chunked
        )
        if not self.whole:
            self._wake()

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)
        self.buffered += len(body)
        if not self.whole:
            if self.buffered > HIGH_WATER and not self.reading_paused:
                self.reading_paused = True
                assert self.transport is not None
                self.transport.pause_reading()
            self._wake()

    def on_message_complete(self) -> None:
        if not self.headers_done:
            return  # the end of an interim answer
        self.complete = True
        # Asked now: once the callback returns, the parser has reset for the next message.
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # the request

    async def exchange(
        self, head: bytes, body: bytes | AsyncIterator[bytes] | None, silence_s: float
    ) -> UpstreamResponse:
        transport = self.transport
        assert transport is not None
        self.active = True
        self.timeout = silence_s
        self.last_read = self.loop.time()
        if body is None:
            transport.write(head)
        elif isinstance(body, bytes):
            transport.write(head + body)
        else:
            transport.write(head)
            async for chunk in body:
                if self.closed:
                    break
                transport.write(chunk)
                if self.writing_paused:
                    await self._drain()
        while not self.headers_done or (self.whole and not self.complete):
            if self.error is not None:
                raise self.error
            await self._wait()
        if self.whole:
            parts = self.parts
            content = parts[0] if len(parts) == 1 else b"".join(parts)
            response = UpstreamResponse(self, self.status, self.headers, content)
            self.finish()
            return response
        return UpstreamResponse(self, self.status, self.headers, None)

    async def read_chunk(self) -> bytes:
        """The next piece of a streamed body; b"" at its end."""
        while True:
            parts = self.parts
            if parts:
                chunk = parts[0] if len(parts) == 1 else b"".join(parts)
                self.parts = []
                self.buffered = 0
                if self.reading_paused and not self.closed:
                    self.reading_paused = False
                    assert self.transport is not None
                    self.transport.resume_reading()
                return chunk
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            await self._wait()

    def finish(self) -> None:
        """The caller is done with the answer: reuse the connection if it can be, else close."""
        if self.complete and self.keep_alive and not self.closed:
            self._reset()
            self.host.release(self)
        else:
            self._close()
            self.host.discard(self)

    # internals

    def _ends_at_eof(self) -> bool:
        return self.length is None and not self.chunked and self.status not in _NO_BODY_STATUS

    def _reset(self) -> None:
        self.active = False
        self.used = True
        self.headers_done = self.complete = self.responded = False
        self.parts = []
        self.buffered = 0
        self.error = None

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    async def _wait(self) -> None:
        """Until the parser has news, or the upstream stayed silent for the timeout."""
        loop = self.loop
        self.waiter = waiter = loop.create_future()
        self.last_read = loop.time()
        self.timer = loop.call_later(self.timeout, self._check_silence)
        try:
            await waiter
        finally:
            self.timer.cancel()
            self.waiter = self.timer = None

    def _check_silence(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        silent = self.loop.time() - self.last_read
        if silent >= self.timeout:
            self._fail(TimeoutError("the upstream stayed silent"))
            self._close()
        else:
            # Data came in meanwhile (a whole body still arriving): wait out the rest.
            self.timer = self.loop.call_later(self.timeout - silent, self._check_silence)

    async def _drain(self) -> None:
        """Until the upstream takes more of the request body (or closes, or the timeout)."""
        self.drain_waiter = drain = self.loop.create_future()
        try:
            await asyncio.wait_for(drain, self.timeout)
        finally:
            self.drain_waiter = None


class _Host:
    """The connections to one upstream address: idle ones kept for reuse, at most `limit` open."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        limit: int,
        keepalive_s: float,
        connect_timeout_s: float,
    ) -> None:
        self.host = host
        self.port = port
        self.limit = limit
        self.keepalive_s = keepalive_s
        self.connect_timeout_s = connect_timeout_s
        self.loop = asyncio.get_running_loop()
        self.idle: list[_Connection] = []
        self.open = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, *, fresh: bool = False) -> _Connection:
        """A kept-alive connection (the most recently used one) or a new one; `fresh`: a new one,
        closing the oldest idle one if the limit is reached."""
        while True:
            idle = self.idle
            while idle and not (fresh and self.open < self.limit):
                connection = idle.pop(0) if fresh else idle.pop()
                connection.pooled = False
                assert connection.transport is not None
                if (
                    fresh
                    or connection.closed
                    or connection.transport.is_closing()
                    # Dropped before the upstream's own keep-alive ends, so the gateway rarely
                    # sends on a socket that is being closed under it.
                    or self.loop.time() - connection.idle_since > self.keepalive_s
                ):
                    connection._close()
                    self.open -= 1
                    if fresh:
                        break
                    continue
                return connection
            if self.open < self.limit:
                return await self._connect()
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass the turn on
                raise

    async def _connect(self) -> _Connection:
        self.open += 1
        try:
            _, connection = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Connection(self), self.host, self.port),
                self.connect_timeout_s,
            )
        except OSError as exc:
            self.open -= 1
            self._wake_one()
            raise UpstreamConnectError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self.open -= 1
            self._wake_one()
            raise
        return connection

    def release(self, connection: _Connection) -> None:
        connection.idle_since = self.loop.time()
        connection.pooled = True
        self.idle.append(connection)
        self._wake_one()

    def discard(self, connection: _Connection) -> None:
        self.open -= 1
        self._wake_one()

    def forget(self, connection: _Connection) -> None:
        """An idle connection the upstream closed."""
        if not connection.pooled:
            return  # already taken out and counted
        connection.pooled = False
        self.idle.remove(connection)
        self.open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for connection in self.idle:
            connection.pooled = False
            connection._close()
        self.open -= len(self.idle)
        self.idle.clear()


class UpstreamClient:
    """Keep-alive pools per upstream base URL (`http://host:port[/prefix]`)."""

    def __init__(
        self,
        *,
        connect_timeout_s: float,
        max_connections: int = 1024,
        keepalive_s: float = 4.0,
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self._hosts: dict[str, tuple[_Host, bytes, bytes] | None] = {}

    def target(self, base_url: str) -> tuple[_Host, bytes, bytes] | None:
        """The pool, Host header and path prefix for a base URL; None if it is not plain HTTP."""
        try:
            return self._hosts[base_url]
        except KeyError:
            pass
        parts = urlsplit(base_url)
        found: tuple[_Host, bytes, bytes] | None = None
        if parts.scheme == "http" and parts.hostname:
            host = _Host(
                parts.hostname,
                parts.port or 80,
                limit=self.max_connections,
                keepalive_s=self.keepalive_s,
                connect_timeout_s=self.connect_timeout_s,
            )
            found = (host, parts.netloc.encode("ascii"), parts.path.rstrip("/").encode("latin-1"))
        self._hosts[base_url] = found
        return found

    async def request(
        self,
        host: _Host,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
        *,
        timeout: float,  # noqa: ASYNC109 (silence from the upstream, per route)
        may_retry: bool,
    ) -> UpstreamResponse:
        """Send `head` (the whole request head, CRLFCRLF included) and `body`; the answer once its
        head (and, when small, its body) is in. `may_retry`: the request can be sent again if a
        reused connection turns out to have been closed under it."""
        connection = await host.acquire()
        try:
            return await connection.exchange(head, body, timeout)
        except _Stale:
            host.discard(connection)
            if not may_retry:
                raise UpstreamBroken("the upstream closed a kept-alive connection") from None
        except BaseException:
            connection._close()
            host.discard(connection)
            raise
        # Not another pooled connection, which may be as stale: a new one.
        connection = await host.acquire(fresh=True)
        try:
            return await connection.exchange(head, body, timeout)
        except _Stale:
            host.discard(connection)
            raise UpstreamBroken("the upstream closed the connection") from None
        except BaseException:
            connection._close()
            host.discard(connection)
            raise

    def close(self) -> None:
        for found in self._hosts.values():
            if found is not None:
                found[0].close()
