from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import pytest

from tests.gateway.harness import RunningGateway, dead_url, run_gateway
from tests.gateway.upstream import create_upstream
from tests.support.servers import serve_in_process
from tests.support.stores import Stores
from tests.support.tokens import TokenIssuer, serve_token_issuer

USER_LIMIT = 25
QUOTES_MAX_BODY = 100_000
CORS_ORIGIN = "https://app.example"


@dataclass(frozen=True)
class Upstreams:
    a: str
    b: str


@pytest.fixture(scope="session")
async def issuer() -> AsyncIterator[TokenIssuer]:
    async with serve_token_issuer() as running:
        yield running


@pytest.fixture(scope="session")
async def upstreams() -> AsyncIterator[Upstreams]:
    async with (
        serve_in_process(create_upstream("a")) as a,
        serve_in_process(create_upstream("b")) as b,
    ):
        yield Upstreams(a, b)


@pytest.fixture(scope="session")
async def gateway(
    stores: Stores,
    issuer: TokenIssuer,
    upstreams: Upstreams,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningGateway]:
    """The gateway as configured for most tests: quotes on two instances, feeds configured but
    unreachable, imaging not deployed, a low per-user limit, a small quotes body limit."""
    env = {
        "GATEWAY_AUTH_URLS": upstreams.a,
        "GATEWAY_QUOTES_URLS": f"{upstreams.a},{upstreams.b}",
        "GATEWAY_CHAT_URLS": upstreams.a,
        "GATEWAY_COMPUTE_URLS": upstreams.a,
        "GATEWAY_FEEDS_URLS": dead_url(),
        "GATEWAY_IMAGING_URLS": "",
        "GATEWAY_RATE_LIMIT_IP": "1000000",
        "GATEWAY_RATE_LIMIT_USER": str(USER_LIMIT),
        "GATEWAY_QUOTES_MAX_BODY_BYTES": str(QUOTES_MAX_BODY),
        "GATEWAY_CORS_ORIGINS": CORS_ORIGIN,
    }
    async with run_gateway(
        stores=stores,
        jwks_url=issuer.jwks_url,
        log_dir=tmp_path_factory.mktemp("gateway"),
        env=env,
    ) as running:
        yield running


@pytest.fixture
async def client(gateway: RunningGateway) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=gateway.base_url, timeout=30) as http:
        yield http
