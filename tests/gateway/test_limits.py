"""Body size limits (413) and rate limits (429 with Retry-After)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from tests.gateway.conftest import QUOTES_MAX_BODY, USER_LIMIT, Upstreams
from tests.gateway.harness import run_gateway
from tests.support.stores import Stores
from tests.support.tokens import TokenIssuer

PROBLEM = "application/problem+json"


async def test_a_declared_body_over_the_limit_is_413_before_reading(
    client: httpx2.AsyncClient,
) -> None:
    marker = uuid.uuid4().hex
    response = await client.post(
        "/quotes/echo",
        content=b"x" * (QUOTES_MAX_BODY + 1),
        headers={"X-Request-ID": marker},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert marker not in json.dumps((await client.get("/quotes/last-seen")).json())


async def test_a_chunked_body_over_the_limit_is_413(client: httpx2.AsyncClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(QUOTES_MAX_BODY // 10_000 + 5):
            yield b"y" * 10_000

    response = await client.post("/quotes/upload", content=body())
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


async def test_a_body_at_the_limit_passes(client: httpx2.AsyncClient) -> None:
    response = await client.post("/quotes/upload", content=b"z" * QUOTES_MAX_BODY)
    assert response.status_code == 200
    assert response.json()["size"] == QUOTES_MAX_BODY


async def test_per_user_rate_limit(client: httpx2.AsyncClient, issuer: TokenIssuer) -> None:
    token = issuer.issue(sub=f"busy-{uuid.uuid4().hex}")
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(USER_LIMIT):
        assert (await client.get("/chat/echo", headers=headers)).status_code == 200
    limited = await client.get("/chat/echo", headers=headers)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == PROBLEM
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another user is not affected.
    other = issuer.issue(sub=f"calm-{uuid.uuid4().hex}")
    ok = await client.get("/chat/echo", headers={"Authorization": f"Bearer {other}"})
    assert ok.status_code == 200


@pytest.fixture
async def strict_gateway(
    stores: Stores, issuer: TokenIssuer, upstreams: Upstreams, tmp_path: Path
) -> AsyncIterator[str]:
    env = {
        "GATEWAY_QUOTES_URLS": upstreams.a,
        "GATEWAY_RATE_LIMIT_IP": "5",
        "GATEWAY_RATE_LIMIT_WINDOW_SECONDS": "30",
        "NAMESPACE": f"{stores.namespace}-ip",
    }
    async with run_gateway(
        stores=stores, jwks_url=issuer.jwks_url, log_dir=tmp_path, env=env
    ) as gw:
        yield gw.base_url


async def test_per_address_rate_limit(strict_gateway: str) -> None:
    async with httpx2.AsyncClient(base_url=strict_gateway) as http:
        statuses = [(await http.get("/quotes/echo")).status_code for _ in range(5)]
        assert statuses == [200] * 5
        limited = await http.get("/quotes/echo")
    assert limited.status_code == 429
    assert limited.headers["content-type"] == PROBLEM
    assert 1 <= int(limited.headers["retry-after"]) <= 30


async def test_concurrent_requests_are_counted_exactly(
    client: httpx2.AsyncClient, issuer: TokenIssuer
) -> None:
    # Checks that arrive together share one Redis call: each still counts once.
    headers = {"Authorization": f"Bearer {issuer.issue(sub=f'burst-{uuid.uuid4().hex}')}"}
    responses = await asyncio.gather(
        *(client.get("/chat/echo", headers=headers) for _ in range(USER_LIMIT + 5))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * USER_LIMIT + [429] * 5
