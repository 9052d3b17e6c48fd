"""A real HTTP/WebSocket peer standing in for the services behind the gateway: it answers under
every service prefix and tells the test what it received."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

CHUNK = bytes(range(256)) * 256  # 64 KiB of a known pattern
GZIPPED = gzip.compress(b"hello, compressed world\n" * 100)


CHUNK_SIZE = len(CHUNK)


def pattern_chunks(size: int) -> list[int]:
    """How a body of `size` bytes is cut into CHUNK-sized pieces."""
    return [CHUNK_SIZE] * (size // CHUNK_SIZE) + ([size % CHUNK_SIZE] if size % CHUNK_SIZE else [])


def create_upstream(name: str) -> Starlette:
    seen: list[dict[str, object]] = []

    async def echo(request: Request) -> Response:
        body = await request.body()
        entry = {
            "instance": name,
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.url.query,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body": body.decode("latin-1"),
        }
        seen.append(entry)
        return JSONResponse(
            entry,
            headers={
                "Set-Cookie": f"session={request.query_params.get('cookie', 'x')}; Path=/",
                "Connection": "X-Private-Hop",
                "X-Private-Hop": "secret",
                "Keep-Alive": "timeout=99",
                "X-Kept": "yes",
            },
        )

    async def upload(request: Request) -> Response:
        size, digest = 0, hashlib.sha256()
        async for chunk in request.stream():
            size += len(chunk)
            digest.update(chunk)
        return JSONResponse(
            {
                "size": size,
                "sha256": digest.hexdigest(),
                "content_length": request.headers.get("content-length"),
                "transfer_encoding": request.headers.get("transfer-encoding"),
            }
        )

    async def download(request: Request) -> Response:
        size = int(request.query_params["size"])
        sized = request.query_params.get("sized", "1") == "1"

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            try:
                for index, piece in enumerate(pattern_chunks(size)):
                    # The server drops writes to a closed connection without a word: ask.
                    if index % 16 == 0 and await request.is_disconnected():
                        return
                    yield CHUNK[:piece]
                    sent += piece
            finally:
                seen.append({"download_sent": sent, "of": size})

        headers = {"Content-Length": str(size)} if sized else {}
        return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)

    async def compressed(request: Request) -> Response:
        return Response(GZIPPED, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    async def sleepy(request: Request) -> Response:
        seconds = float(request.query_params.get("wait") or request.query_params["seconds"])
        await asyncio.sleep(seconds)
        return JSONResponse({"slept": seconds})

    async def last_seen(request: Request) -> Response:
        return JSONResponse(seen[-1] if seen else None)

    async def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    async def openapi(request: Request) -> Response:
        prefix = request.query_params.get("prefix", "quotes")
        return JSONResponse(
            {
                "openapi": "3.1.0",
                "info": {"title": name, "version": "1"},
                "paths": {
                    f"/{prefix}/echo": {"get": {"responses": {"200": {"description": "ok"}}}}
                },
                "components": {"schemas": {"Problem": {"type": "object"}}},
            }
        )

    async def websocket(ws: WebSocket) -> None:
        await ws.accept(subprotocol=(ws.scope.get("subprotocols") or [None])[0])
        await ws.send_json(
            {
                "hello": name,
                "query": ws.url.query,
                "request_id": ws.headers.get("x-request-id"),
                "cookie": ws.headers.get("cookie"),
            }
        )
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    seen.append({"ws_closed": message.get("code")})
                    return
                if message.get("text") == "close-4001":
                    await ws.close(code=4001, reason="asked to")
                    return
                if message.get("text") is not None:
                    await ws.send_text("echo:" + message["text"])
                else:
                    await ws.send_bytes(message.get("bytes") or b"")
        except WebSocketDisconnect as exc:
            seen.append({"ws_closed": exc.code})

    routes = [Route("/readyz", ready), Route("/openapi.json", openapi)]
    for prefix in ("auth", "quotes", "chat", "feeds", "imaging", "compute"):
        routes += [
            Route(f"/{prefix}/echo", echo, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
            Route(f"/{prefix}/echo/{{rest:path}}", echo, methods=["GET", "POST", "DELETE"]),
            Route(f"/{prefix}/upload", upload, methods=["POST"]),
            Route(f"/{prefix}/download", download),
            Route(f"/{prefix}/compressed", compressed),
            Route(f"/{prefix}/last-seen", last_seen),
            Route(f"/{prefix}/sleep", sleepy),
            WebSocketRoute(f"/{prefix}/ws", websocket),
        ]
    # The exact routes of the access table, answered like echo.
    routes += [
        Route("/auth/me", echo),
        Route("/quotes", echo, methods=["GET", "POST"]),
        Route("/quotes/import", echo, methods=["POST"]),
        Route("/quotes/search", echo),
        Route("/chat/", echo),
        Route("/chat/rooms/{room}/messages", sleepy),
    ]
    return Starlette(routes=routes)
