"""Per-route timeouts: a silent service gets 504 after the route's timeout; long-poll routes are
held for the longer long-poll timeout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from tests.gateway.conftest import Upstreams
from tests.gateway.harness import run_gateway
from tests.support.stores import Stores
from tests.support.tokens import TokenIssuer


@pytest.fixture(scope="module")
async def impatient_gateway(
    stores: Stores,
    issuer: TokenIssuer,
    upstreams: Upstreams,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    env = {
        "GATEWAY_QUOTES_URLS": upstreams.a,
        "GATEWAY_CHAT_URLS": upstreams.a,
        "GATEWAY_TIMEOUT_SECONDS": "1",
        "GATEWAY_LONG_POLL_TIMEOUT_SECONDS": "2.5",
    }
    async with run_gateway(
        stores=stores,
        jwks_url=issuer.jwks_url,
        log_dir=tmp_path_factory.mktemp("impatient"),
        env=env,
    ) as gateway:
        yield gateway.base_url


async def test_a_silent_service_gets_504(impatient_gateway: str) -> None:
    async with httpx2.AsyncClient(base_url=impatient_gateway, timeout=30) as http:
        quick = await http.get("/quotes/sleep", params={"seconds": "0.05"})
        assert quick.status_code == 200
        slow = await http.get("/quotes/sleep", params={"seconds": "1.5"})
    assert slow.status_code == 504
    assert slow.headers["content-type"] == "application/problem+json"


async def test_long_poll_routes_are_held_longer(
    impatient_gateway: str, issuer: TokenIssuer
) -> None:
    headers = {"Authorization": f"Bearer {issuer.issue(sub='poller')}"}
    async with httpx2.AsyncClient(base_url=impatient_gateway, timeout=30) as http:
        held = await http.get("/chat/rooms/general/messages?wait=1.5", headers=headers)
        assert held.status_code == 200
        assert held.json() == {"slept": 1.5}
        # Past the long-poll timeout even a long poll is cut.
        cut = await http.get("/chat/rooms/general/messages?wait=4", headers=headers)
    assert cut.status_code == 504
