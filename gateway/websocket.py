"""The WebSocket proxy: the client's socket (ASGI) paired with one to the service (aiohttp),
messages pumped both ways until either side closes; its close code is passed to the other.

The same checks as HTTP run before the handshake is answered. A refusal is an HTTP answer
(problem+json, through the ASGI denial-response extension) so the client sees 401/429/503 rather
than a bare closed socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp
from aiohttp import WSMsgType
from starlette.types import Receive, Scope, Send
from yarl import URL

from gateway.guard import bearer_token
from gateway.headers import upstream_request_headers
from gateway.policy import Access, access_for
from gateway.problems import problem_bytes
from gateway.proxy import Runtime
from gateway.upstreams import UpstreamPool
from shared.errors import PROBLEM_JSON, ProblemError
from shared.request_id import from_scope, request_id_var

access_logger = logging.getLogger("access")
logger = logging.getLogger(__name__)

# Codes that describe a close but may not be sent in a close frame (RFC 6455 §7.4.1).
_UNSENDABLE = {1005: 1000, 1006: 1011, 1015: 1011}


def _sendable(code: int | None) -> int:
    if code is None:
        return 1000
    return _UNSENDABLE.get(code, code)


class WebSocketProxy:
    def __init__(
        self, *, pools: dict[str, UpstreamPool], runtime: Runtime, connect_timeout_s: float
    ) -> None:
        self.pools = pools
        self.runtime = runtime
        self.timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0)
        self.connect_timeout_s = connect_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send, service: str) -> None:
        started = time.perf_counter()
        request_id = from_scope(scope)
        context = request_id_var.set(request_id)
        outcome = "closed"
        try:
            message = await receive()
            if message["type"] != "websocket.connect":
                return
            outcome = await self._handle(scope, receive, send, service, request_id)
        finally:
            access_logger.info(
                "WS %s %s %.1fms", scope["path"], outcome, (time.perf_counter() - started) * 1000
            )
            request_id_var.reset(context)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, service: str, request_id: str
    ) -> str:
        path: str = scope["path"]
        pool = self.pools[service]
        session, guard = self.runtime.session, self.runtime.guard
        assert session is not None
        assert guard is not None
        if not pool.deployed:
            return await self._deny(scope, send, 503, f"The {service} service is not deployed here")
        client = scope.get("client")
        client_ip = client[0] if client else "unknown"
        needs_token = access_for("GET", path) is Access.TOKEN
        try:
            await guard.check(
                client_ip=client_ip,
                token=bearer_token(scope["headers"], scope["query_string"], websocket=True),
                needs_token=needs_token,
            )
        except ProblemError as exc:
            return await self._deny(scope, send, exc.status, exc.detail, exc.headers)
        headers = upstream_request_headers(
            scope["headers"],
            client_ip=client_ip,
            scheme=scope.get("scheme", "ws"),
            request_id=request_id,
            websocket=True,
        )
        target = (scope.get("raw_path") or path.encode()).decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        for instance in pool.candidates():
            try:
                upstream = await asyncio.wait_for(
                    session.ws_connect(
                        URL(instance.base_url + target, encoded=True),
                        headers=headers,
                        protocols=scope.get("subprotocols") or (),
                        timeout=self.timeout,
                        max_msg_size=16 * 1024 * 1024,
                    ),
                    self.connect_timeout_s + 5,
                )
            except aiohttp.ClientConnectorError:
                pool.mark_down(instance)
                continue
            except aiohttp.WSServerHandshakeError as exc:
                status = exc.status if 400 <= exc.status < 600 else 502
                return await self._deny(scope, send, status, f"The {service} service refused")
            except (aiohttp.ClientError, TimeoutError):
                return await self._deny(scope, send, 502, f"The {service} service failed")
            await send(
                {
                    "type": "websocket.accept",
                    "subprotocol": upstream.protocol,
                    "headers": [(b"x-request-id", request_id.encode())],
                }
            )
            return await _pump(receive, send, upstream)
        return await self._deny(
            scope,
            send,
            503,
            f"The {service} service is not reachable",
            {"Retry-After": str(pool.retry_after())},
        )

    async def _deny(
        self,
        scope: Scope,
        send: Send,
        status: int,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> str:
        if "websocket.http.response" in scope.get("extensions", {}):
            body = problem_bytes(status, detail, scope["path"])
            raw = [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", (request_id_var.get() or "").encode()),
            ]
            raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
            await send({"type": "websocket.http.response.start", "status": status, "headers": raw})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            # 1008 policy violation / 1013 try again later, as close codes before the handshake.
            code = 1013 if status in (429, 503) else 1008
            await send({"type": "websocket.close", "code": code, "reason": detail[:100]})
        return f"denied {status}"


async def _pump(receive: Receive, send: Send, upstream: aiohttp.ClientWebSocketResponse) -> str:
    async def client_to_upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                if message.get("text") is not None:
                    await upstream.send_str(message["text"])
                else:
                    await upstream.send_bytes(message.get("bytes") or b"")
            elif message["type"] == "websocket.disconnect":
                await upstream.close(code=_sendable(message.get("code")))
                return

    async def upstream_to_client() -> None:
        while True:
            message = await upstream.receive()
            if message.type is WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": message.data})
            elif message.type is WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": message.data})
            else:
                # CLOSE (aiohttp has answered it), CLOSED or ERROR: the service side is over.
                code = _sendable(
                    upstream.close_code or (1011 if message.type is WSMsgType.ERROR else 1000)
                )
                reason = message.extra if isinstance(message.extra, str) else ""
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": code, "reason": reason})
                return

    tasks = [
        asyncio.ensure_future(client_to_upstream()),
        asyncio.ensure_future(upstream_to_client()),
    ]
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:
                logger.info("websocket pump ended: %r", task.exception())
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()
    return f"closed {upstream.close_code}"
