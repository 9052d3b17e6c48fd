"""A 200 MB body each way through the gateway (a real process) while its memory stays within
100 MB of idle. Bodies are generated on the fly and checked by hash, never held in memory."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import psutil

from tests.gateway.conftest import Upstreams
from tests.gateway.harness import RunningGateway
from tests.gateway.upstream import CHUNK, pattern_chunks
from tests.support.tokens import TokenIssuer

SIZE = 200 * 1024 * 1024
MEMORY_SLACK = 100 * 1024 * 1024


def expected_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for piece in pattern_chunks(size):
        digest.update(CHUNK[:piece])
    return digest.hexdigest()


async def generated(size: int) -> AsyncIterator[bytes]:
    for piece in pattern_chunks(size):
        yield CHUNK[:piece]


@asynccontextmanager
async def peak_rss(pid: int) -> AsyncIterator[list[int]]:
    """Samples the process's resident memory until the block ends; yields [idle, peak]."""
    process = psutil.Process(pid)
    idle = process.memory_info().rss
    found = [idle, idle]
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            found[1] = max(found[1], process.memory_info().rss)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    try:
        yield found
    finally:
        done.set()
        await sampler


async def warm_up(http: httpx2.AsyncClient, headers: dict[str, str]) -> None:
    # Imports, buffers and pools settle before idle memory is read.
    for _ in range(3):
        await http.post("/compute/upload", content=generated(4 * 1024 * 1024), headers=headers)
        async with http.stream("GET", "/compute/download?size=4194304", headers=headers) as r:
            async for _chunk in r.aiter_raw():
                pass


async def test_200_mb_each_way_in_flat_memory(gateway: RunningGateway, issuer: TokenIssuer) -> None:
    headers = {"Authorization": f"Bearer {issuer.issue(sub='streamer')}"}
    async with httpx2.AsyncClient(base_url=gateway.base_url, timeout=120) as http:
        await warm_up(http, headers)
        async with peak_rss(gateway.pid) as memory:
            # Upload, sized: Content-Length passes through.
            sized = await http.post(
                "/compute/upload",
                content=generated(SIZE),
                headers={**headers, "Content-Length": str(SIZE)},
            )
            # Upload, chunked (no length known up front).
            chunked = await http.post("/compute/upload", content=generated(SIZE), headers=headers)
            # Download, sized and chunked.
            downloads = []
            for sized_flag in ("1", "0"):
                digest, total = hashlib.sha256(), 0
                async with http.stream(
                    "GET", f"/compute/download?size={SIZE}&sized={sized_flag}", headers=headers
                ) as response:
                    assert response.status_code == 200
                    async for chunk in response.aiter_raw():
                        digest.update(chunk)
                        total += len(chunk)
                downloads.append(
                    (response.headers.get("content-length"), total, digest.hexdigest())
                )

    want = expected_sha256(SIZE)
    assert sized.status_code == 200
    assert sized.json() == {
        "size": SIZE,
        "sha256": want,
        "content_length": str(SIZE),
        "transfer_encoding": None,
    }
    assert chunked.status_code == 200
    assert chunked.json()["size"] == SIZE
    assert chunked.json()["sha256"] == want
    assert chunked.json()["transfer_encoding"] == "chunked"
    assert downloads == [(str(SIZE), SIZE, want), (None, SIZE, want)]
    idle, peak = memory
    print(f"gateway RSS idle {idle / 2**20:.0f} MB, peak {peak / 2**20:.0f} MB")
    assert peak - idle < MEMORY_SLACK, f"gateway grew {(peak - idle) / 2**20:.0f} MB"


async def test_a_download_the_client_leaves_stops_upstream(
    gateway: RunningGateway, issuer: TokenIssuer, upstreams: Upstreams
) -> None:
    headers = {"Authorization": f"Bearer {issuer.issue(sub='leaver')}"}
    size = 4 * 1024**3  # far more than the test reads, so only a stop can end it early
    # A raw socket, closed mid-body: an HTTP client library might drain the rest on close.
    host, port = gateway.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"GET /compute/download?size={size}&sized=0 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: {headers['Authorization']}\r\n\r\n".encode()
    )
    await writer.drain()
    received = 0
    while received < 8 * 1024 * 1024:
        chunk = await reader.read(1 << 20)
        assert chunk, "the gateway closed early"
        received += len(chunk)
    writer.close()
    # The client is gone: the gateway drops the upstream response, and the service stops.
    deadline = time.monotonic() + 20
    async with httpx2.AsyncClient(base_url=upstreams.a) as direct:
        while True:
            last = (await direct.get("/compute/last-seen")).json()
            if last and "download_sent" in last and last["of"] == size:
                break
            assert time.monotonic() < deadline, "the upstream went on streaming"
            await asyncio.sleep(0.05)
    assert last["download_sent"] < size
