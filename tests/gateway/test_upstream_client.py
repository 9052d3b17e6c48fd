"""The gateway's lean upstream client against real HTTP peers on loopback: a uvicorn app for the
ordinary answers, a scripted raw peer for the awkward ones."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

from gateway.upstream_client import (
    HIGH_WATER,
    SMALL_BODY,
    UpstreamBroken,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamResponse,
)
from tests.gateway.harness import dead_url
from tests.gateway.rawpeer import RawPeer, Received, answer_bytes, raw_peer, until
from tests.gateway.upstream import CHUNK

# Larger than the kernel's socket buffers on both sides, so that the reader must pause.
LARGE = 64 * 1024 * 1024


def head(method: str, target: str, peer_url: str, *extra: str) -> bytes:
    host = peer_url.removeprefix("http://")
    return "\r\n".join([f"{method} {target} HTTP/1.1", f"host: {host}", *extra, "", ""]).encode()


async def body_of(response: UpstreamResponse) -> bytes:
    try:
        if response.body is not None:
            return response.body
        return b"".join([chunk async for chunk in response.chunks()])
    finally:
        response.release()


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    upstream = UpstreamClient(connect_timeout_s=3)
    yield upstream
    upstream.close()


async def request(
    client: UpstreamClient,
    url: str,
    method: str = "GET",
    target: str = "/x",
    body: bytes | AsyncIterator[bytes] | None = None,
    *extra: str,
    silence_s: float = 10,
    may_retry: bool = True,
) -> UpstreamResponse:
    found = client.target(url)
    assert found is not None
    host, _, _ = found
    return await client.request(
        host, head(method, target, url, *extra), body, timeout=silence_s, may_retry=may_retry
    )


async def keep_alive(received: Received, writer: asyncio.StreamWriter) -> bool:
    writer.write(answer_bytes(200, f"{received.method} {received.target}".encode()))
    return True


async def test_small_answers_come_whole_over_one_kept_alive_connection(
    client: UpstreamClient,
) -> None:
    async with raw_peer(keep_alive) as peer:
        for n in range(3):
            response = await request(client, peer.base_url, target=f"/n/{n}")
            assert response.status == 200
            assert (b"content-length", b"8") in response.headers
            assert await body_of(response) == f"GET /n/{n}".encode()
    assert peer.connections == 1


async def test_a_request_body_and_the_head_arrive_as_written(client: UpstreamClient) -> None:
    async with raw_peer(keep_alive) as peer:
        response = await request(
            client,
            peer.base_url,
            "POST",
            "/up?q=1",
            b"hello",
            "content-length: 5",
            "x-custom: yes",
        )
        assert await body_of(response) == b"POST /up?q=1"
    assert peer.received[0].body == b"hello"
    assert peer.received[0].headers["x-custom"] == "yes"


async def test_a_streamed_request_body_is_sent_whole(client: UpstreamClient) -> None:
    size = 8 * 1024 * 1024

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(size // len(CHUNK)):
            yield CHUNK

    async def digest(received: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer_bytes(200, hashlib.sha256(received.body).hexdigest().encode()))
        return True

    async with raw_peer(digest) as peer:
        response = await request(
            client, peer.base_url, "PUT", "/up", chunks(), f"content-length: {size}"
        )
        want = hashlib.sha256(CHUNK * (size // len(CHUNK))).hexdigest().encode()
        assert await body_of(response) == want


async def test_a_chunked_answer_streams_and_the_connection_is_kept(
    client: UpstreamClient,
) -> None:
    async def chunked(received: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"hello ", b"chunked ", b"world"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        return True

    async with raw_peer(chunked) as peer:
        for _ in range(2):
            response = await request(client, peer.base_url)
            assert response.body is None  # streamed: no length known
            assert await body_of(response) == b"hello chunked world"
    assert peer.connections == 1


async def test_a_large_answer_streams_with_reading_paused_in_between(
    client: UpstreamClient,
) -> None:
    async def large(received: Received, writer: asyncio.StreamWriter) -> bool:
        if received.target == "/small":
            return await keep_alive(received, writer)
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {LARGE}\r\n\r\n".encode())
        for _ in range(LARGE // len(CHUNK)):
            writer.write(CHUNK)
            await writer.drain()
        return True

    async with raw_peer(large) as peer:
        response = await request(client, peer.base_url)
        assert response.body is None
        chunks = response.chunks()
        size = len(await anext(chunks))
        # Not taken: the client stops reading once HIGH_WATER bytes wait, whatever the size.
        connection = response._connection
        assert connection is not None
        await until(lambda: connection.reading_paused)
        assert connection.buffered <= HIGH_WATER + 1024 * 1024
        async for chunk in chunks:
            assert len(chunk) <= HIGH_WATER + 1024 * 1024
            size += len(chunk)
        response.release()
        assert size == LARGE
        # Read to the end: the connection is reused.
        assert await body_of(await request(client, peer.base_url, target="/small")) != b""
    assert peer.connections == 1


async def test_connection_close_is_honoured(client: UpstreamClient) -> None:
    async def closing(received: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer_bytes(200, b"bye", "Connection: close"))
        return False

    async with raw_peer(closing) as peer:
        for _ in range(3):
            assert await body_of(await request(client, peer.base_url)) == b"bye"
    assert peer.connections == 3


async def test_an_answer_without_length_ends_when_the_upstream_closes(
    client: UpstreamClient,
) -> None:
    async def until_close(received: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        return False

    async with raw_peer(until_close) as peer:
        assert await body_of(await request(client, peer.base_url)) == b"all of it"
        assert await body_of(await request(client, peer.base_url)) == b"all of it"
    assert peer.connections == 2


async def test_a_connection_the_upstream_closed_while_idle_is_not_used(
    client: UpstreamClient,
) -> None:
    async def once(received: Received, writer: asyncio.StreamWriter) -> bool:
        # A keep-alive answer, then the upstream drops the connection as its idle time ends.
        writer.write(answer_bytes(200, b"ok"))
        return False

    async with raw_peer(once) as peer:
        assert await body_of(await request(client, peer.base_url)) == b"ok"
        await until(lambda: peer.open_connections == 0)
        found = client.target(peer.base_url)
        assert found is not None
        await until(lambda: not found[0].idle)
        # Not even a POST fails: the closed connection is never written to.
        response = await request(client, peer.base_url, "POST", may_retry=False)
        assert await body_of(response) == b"ok"
    assert peer.connections == 2


async def test_a_connection_closed_as_it_is_reused_is_retried_once_when_allowed(
    client: UpstreamClient,
) -> None:
    async def answer_first_only(received: Received, writer: asyncio.StreamWriter) -> bool:
        if len(peer.received) % 2 == 0:
            return False  # the second request on a connection: closed unanswered
        writer.write(answer_bytes(200, b"ok"))
        return True

    async with raw_peer(answer_first_only) as peer:
        assert await body_of(await request(client, peer.base_url)) == b"ok"
        # The retry goes to a new connection (and the peer answers it: an odd count again).
        assert await body_of(await request(client, peer.base_url, may_retry=True)) == b"ok"
        assert [r.connection for r in peer.received] == [1, 1, 2]
        # Without leave to repeat the request, the failure is the caller's to answer.
        with pytest.raises(UpstreamBroken):
            await request(client, peer.base_url, "POST", may_retry=False)
        assert [r.connection for r in peer.received] == [1, 1, 2, 2]


async def test_an_upstream_dying_mid_body_breaks_the_answer(client: UpstreamClient) -> None:
    async def dies(received: Received, writer: asyncio.StreamWriter) -> bool:
        size = 100 if received.target == "/small" else 10 * SMALL_BODY
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode() + b"x" * 10)
        await writer.drain()
        return False

    async with raw_peer(dies) as peer:
        # A small answer is read whole first: the failure comes before anything is passed on.
        with pytest.raises(UpstreamBroken):
            await request(client, peer.base_url, target="/small")
        # A streamed one breaks off while it is read.
        response = await request(client, peer.base_url, target="/large")
        with pytest.raises(UpstreamBroken):
            await body_of(response)
        found = client.target(peer.base_url)
        assert found is not None
        assert found[0].open == 0


async def test_silence_from_the_upstream_times_out(client: UpstreamClient) -> None:
    release = asyncio.Event()

    async def silent(received: Received, writer: asyncio.StreamWriter) -> bool:
        if received.target == "/half":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nsome")
            await writer.drain()
        await release.wait()
        return False

    async with raw_peer(silent) as peer:
        with pytest.raises(TimeoutError):
            await request(client, peer.base_url, silence_s=0.2)
        response = await request(client, peer.base_url, target="/half", silence_s=0.2)
        with pytest.raises(TimeoutError):
            await body_of(response)
        release.set()


async def test_garbage_is_not_an_answer(client: UpstreamClient) -> None:
    async def garbage(received: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        return True

    async with raw_peer(garbage) as peer:
        with pytest.raises(UpstreamBroken):
            await request(client, peer.base_url)


async def test_an_interim_answer_is_skipped(client: UpstreamClient) -> None:
    async def early_hints(received: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        writer.write(answer_bytes(201, b"made"))
        return True

    async with raw_peer(early_hints) as peer:
        response = await request(client, peer.base_url, "POST", "/x", b"", "content-length: 0")
        assert response.status == 201
        assert all(name != b"link" for name, _ in response.headers)
        assert await body_of(response) == b"made"


async def test_no_body_statuses_need_no_length(client: UpstreamClient) -> None:
    async def no_content(received: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        return True

    async with raw_peer(no_content) as peer:
        for _ in range(2):
            response = await request(client, peer.base_url, "DELETE")
            assert response.status == 204
            assert await body_of(response) == b""
    assert peer.connections == 1


async def test_a_refused_connection_says_so(client: UpstreamClient) -> None:
    with pytest.raises(UpstreamConnectError):
        await request(client, dead_url())


async def test_the_connection_limit_makes_requests_wait(client: UpstreamClient) -> None:
    lean = UpstreamClient(connect_timeout_s=3, max_connections=2)
    try:
        async with raw_peer(keep_alive) as peer:

            async def one(n: int) -> bytes:
                return await body_of(await request(lean, peer.base_url, target=f"/{n}"))

            bodies = await asyncio.gather(*(one(n) for n in range(20)))
            assert bodies == [f"GET /{n}".encode() for n in range(20)]
        assert peer.connections <= 2
    finally:
        lean.close()


async def test_only_plain_http_is_taken(client: UpstreamClient) -> None:
    assert client.target("https://127.0.0.1:8443") is None
    found = client.target("http://127.0.0.1:8001/base/")
    assert found is not None
    assert found[1:] == (b"127.0.0.1:8001", b"/base")


async def test_the_peer_is_reached_at_its_address(client: UpstreamClient) -> None:
    async with raw_peer(keep_alive) as peer:
        assert isinstance(peer, RawPeer)
        await body_of(await request(client, peer.base_url))
        assert peer.received[0].headers["host"] == f"127.0.0.1:{peer.port}"


async def test_a_service_that_stops_taking_the_body_times_out(client: UpstreamClient) -> None:
    stop = asyncio.Event()

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await stop.wait()
        writer.close()

    server = await asyncio.start_server(never_reads, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(LARGE // len(CHUNK)):
            yield CHUNK

    try:
        with pytest.raises(TimeoutError):
            await request(
                client, url, "PUT", "/up", chunks(), f"content-length: {LARGE}", silence_s=0.3
            )
    finally:
        stop.set()
        server.close()
        await server.wait_closed()
