"""What the client sees through the gateway when a service misbehaves at the HTTP level: a scripted
raw peer stands in for the service (closing kept-alive connections, dying mid-body, garbage,
silence, chunked and close-delimited answers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2
import pytest

from gateway.upstream_client import SMALL_BODY
from tests.gateway.harness import run_gateway
from tests.gateway.rawpeer import RawPeer, Received, answer_bytes, raw_peer
from tests.support.stores import Stores
from tests.support.tokens import TokenIssuer

LARGE = 4 * SMALL_BODY


async def misbehave(received: Received, writer: asyncio.StreamWriter) -> bool:
    path = received.target.split("?")[0]
    if path == "/quotes/ok-then-close":
        # A keep-alive answer, then the connection is dropped as if its idle time had ended.
        writer.write(answer_bytes(200, b"fine"))
        return False
    if path == "/quotes/dies-small":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        await writer.drain()
        return False
    if path == "/quotes/dies-large":
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {LARGE}\r\n\r\n".encode() + b"x" * 10)
        await writer.drain()
        return False
    if path == "/quotes/garbage":
        writer.write(b"this is not HTTP\r\n\r\n")
        return False
    if path == "/quotes/silent":
        return True  # no answer; the connection stays open until the gateway gives up on it
    if path == "/quotes/chunked":
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"one ", b"two ", b"three"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        writer.write(b"0\r\n\r\n")
        return True
    if path == "/quotes/until-close":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end")
        return False
    if path == "/quotes/connection-close":
        writer.write(answer_bytes(200, b"closing", "Connection: close"))
        return False
    writer.write(answer_bytes(200, received.body or b"echo"))
    return True


@pytest.fixture(scope="module")
async def peer() -> AsyncIterator[RawPeer]:
    async with raw_peer(misbehave) as running:
        yield running


@pytest.fixture(scope="module")
async def gateway_url(
    stores: Stores,
    issuer: TokenIssuer,
    peer: RawPeer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    env = {"GATEWAY_QUOTES_URLS": peer.base_url, "GATEWAY_TIMEOUT_SECONDS": "1"}
    async with run_gateway(
        stores=stores,
        jwks_url=issuer.jwks_url,
        log_dir=tmp_path_factory.mktemp("misbehaving"),
        env=env,
    ) as gateway:
        yield gateway.base_url


@pytest.fixture
async def http(gateway_url: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=gateway_url, timeout=30) as client:
        yield client


async def test_connections_the_service_drops_after_answering_are_not_reused(
    http: httpx2.AsyncClient, peer: RawPeer
) -> None:
    before = peer.connections
    for _ in range(5):
        response = await http.get("/quotes/ok-then-close")
        assert response.status_code == 200
        assert response.text == "fine"
    # A POST cannot be repeated, so it must never meet a dropped connection either.
    for _ in range(5):
        response = await http.post("/quotes/ok-then-close", content=b"data")
        assert response.status_code == 200
    assert peer.connections - before >= 10


async def test_a_service_dying_before_a_small_answer_is_complete_is_502(
    http: httpx2.AsyncClient,
) -> None:
    response = await http.get("/quotes/dies-small")
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_service_dying_mid_stream_cuts_the_answer_short(
    http: httpx2.AsyncClient,
) -> None:
    # The head has gone to the client already: all that is left is to end the answer short.
    with pytest.raises(httpx2.RemoteProtocolError):
        await http.get("/quotes/dies-large")
    assert (await http.get("/quotes/echo")).status_code == 200


async def test_garbage_from_the_service_is_502(http: httpx2.AsyncClient) -> None:
    assert (await http.get("/quotes/garbage")).status_code == 502


async def test_a_silent_service_is_504(http: httpx2.AsyncClient) -> None:
    assert (await http.get("/quotes/silent")).status_code == 504


async def test_chunked_and_close_delimited_answers_pass(http: httpx2.AsyncClient) -> None:
    for _ in range(2):
        chunked = await http.get("/quotes/chunked")
        assert chunked.status_code == 200
        assert chunked.text == "one two three"
        until_close = await http.get("/quotes/until-close")
        assert until_close.status_code == 200
        assert until_close.text == "to the end"
        closing = await http.get("/quotes/connection-close")
        assert closing.text == "closing"
        assert "connection" not in closing.headers


async def test_bodies_reach_the_service_whole(http: httpx2.AsyncClient, peer: RawPeer) -> None:
    body = bytes(range(256)) * 1000  # larger than a small body: streamed to the service
    response = await http.put("/quotes/echo", content=body)
    assert response.status_code == 200
    assert response.content == body
    assert peer.received[-1].headers["content-length"] == str(len(body))
