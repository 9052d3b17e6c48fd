"""The barest forwarder on uvicorn (httptools, uvloop) with aiohttp's client: one ClientSession and
none of the gateway's work — no header rewriting, request id, checks, limits, metrics or logs. It
was the floor under the gateway's cost while the gateway forwarded with aiohttp; the benchmark
still runs it beside the gateway, so the figures show what the gateway's own upstream client saves
against that stack even with all the gateway's features on.

`uvicorn bench.gateway_floor:app` with FLOOR_UPSTREAM set to the service's base URL."""

from __future__ import annotations

import os

import aiohttp
from starlette.types import Receive, Scope, Send
from yarl import URL

UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:8002")
_session: list[aiohttp.ClientSession] = []


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _session.append(
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0, limit_per_host=1024),
                    cookie_jar=aiohttp.DummyCookieJar(),
                    auto_decompress=False,
                )
            )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await _session.pop().close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    url = URL(UPSTREAM + scope["path"], encoded=True)
    async with _session[0].request(scope["method"], url, headers=headers) as response:
        body = await response.read()
        raw = [(k.lower(), v) for k, v in response.raw_headers if k.lower() != b"date"]
        await send({"type": "http.response.start", "status": response.status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
