"""A real HTTP/1.1 peer on loopback whose answers a test writes byte by byte: for the cases a
well-behaved server does not produce on demand (closing a kept-alive connection, dying mid-body,
garbage, silence)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int  # 1 for the peer's first connection, 2 for its second, ...


# Answers one request on `writer`; returns whether the connection stays open for another.
Answer = Callable[[Received, asyncio.StreamWriter], Awaitable[bool]]


@dataclass
class RawPeer:
    base_url: str
    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    open_connections: int = 0


@asynccontextmanager
async def raw_peer(answer: Answer) -> AsyncIterator[RawPeer]:
    peer = RawPeer("", "127.0.0.1", 0)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer.connections += 1
        peer.open_connections += 1
        index = peer.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                received = Received(method, target, headers, body, index)
                peer.received.append(received)
                if not await answer(received, writer):
                    return
        except ConnectionError:
            return
        finally:
            peer.open_connections -= 1
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    peer.port = port
    peer.base_url = f"http://127.0.0.1:{port}"
    try:
        yield peer
    finally:
        server.close()
        await server.wait_closed()


def answer_bytes(status: int, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def until(condition: Callable[[], bool], *, deadline_s: float = 10.0) -> None:
    """Wait for a condition that another task brings about (never a fixed sleep)."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not come about")
        await asyncio.sleep(0.01)
