"""WebSockets through the gateway: messages both ways, close codes passed on, the token checked
before the handshake is answered."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.gateway.conftest import Upstreams
from tests.gateway.harness import RunningGateway
from tests.support.tokens import TokenIssuer


def ws_url(gateway: RunningGateway, path: str) -> str:
    return gateway.base_url.replace("http://", "ws://") + path


async def last_seen(upstream: str) -> object:
    async with aiohttp.ClientSession() as http, http.get(f"{upstream}/chat/last-seen") as r:
        return await r.json()


async def test_messages_flow_both_ways(gateway: RunningGateway, issuer: TokenIssuer) -> None:
    token = issuer.issue(sub="ws-user")
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            ws_url(gateway, "/chat/ws?after=7"),
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "ws-trace-1"},
            protocols=("chat.v1",),
        ) as ws,
    ):
        assert ws.protocol == "chat.v1"
        hello = await ws.receive_json()
        assert hello["hello"] == "a"
        assert hello["query"] == "after=7"
        assert hello["request_id"] == "ws-trace-1"
        await ws.send_str("ping")
        assert await ws.receive_str() == "echo:ping"
        await ws.send_bytes(b"\x00\x01binary")
        assert await ws.receive_bytes() == b"\x00\x01binary"


async def test_the_services_close_code_reaches_the_client(
    gateway: RunningGateway, issuer: TokenIssuer
) -> None:
    token = issuer.issue(sub="ws-user")
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(ws_url(gateway, f"/chat/ws?access_token={token}")) as ws,
    ):
        await ws.receive_json()
        await ws.send_str("close-4001")
        message = await ws.receive()
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == 4001


async def test_the_clients_close_code_reaches_the_service(
    gateway: RunningGateway, issuer: TokenIssuer, upstreams: Upstreams
) -> None:
    token = issuer.issue(sub="ws-user")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            ws_url(gateway, "/chat/ws"), headers={"Cookie": f"access_token={token}"}
        )
        await ws.receive_json()
        await ws.close(code=4321)
    deadline = time.monotonic() + 10
    while await last_seen(upstreams.a) != {"ws_closed": 4321}:
        assert time.monotonic() < deadline, "the service never saw the close code"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_a_handshake_without_a_valid_token_is_refused(
    gateway: RunningGateway, token: str | None
) -> None:
    path = "/chat/ws" + (f"?access_token={token}" if token else "")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws_url(gateway, path))
    assert refused.value.status == 401


async def test_a_handshake_to_a_missing_service_is_refused(gateway: RunningGateway) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws_url(gateway, "/imaging/ws"))
    assert refused.value.status == 503
