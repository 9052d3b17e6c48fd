"""The gateway's own endpoints: health, readiness across services, metrics, the merged OpenAPI
document and its docs page, CORS, the home page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.gateway.conftest import CORS_ORIGIN
from tests.gateway.harness import RunningGateway, run_gateway
from tests.support.servers import serve_in_process
from tests.support.stores import Stores
from tests.support.tokens import TokenIssuer

PROBLEM = "application/problem+json"


def documented_service(prefix: str, item_schema: dict[str, Any]) -> Starlette:
    document = {
        "openapi": "3.1.0",
        "info": {"title": prefix, "version": "1"},
        "paths": {
            f"/{prefix}/items": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Item"}
                                }
                            },
                        }
                    }
                }
            }
        },
        "components": {
            "schemas": {"Item": item_schema, "Problem": {"type": "object", "title": "Problem"}}
        },
    }

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    return Starlette(routes=[Route("/openapi.json", openapi), Route("/readyz", ready)])


async def test_healthz(client: httpx2.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_503_with_the_down_service_named(client: httpx2.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert "retry-after" in response.headers
    checks = response.json()["checks"]
    assert checks["feeds"]["ok"] is False
    assert "not reachable" in checks["feeds"]["detail"]
    for up in ("redis", "auth", "quotes", "chat", "compute"):
        assert checks[up]["ok"] is True, up
    assert "imaging" not in checks  # not deployed: nothing to wait for


async def test_metrics_count_proxied_requests(client: httpx2.AsyncClient) -> None:
    await client.get("/quotes/echo")
    text = (await client.get("/metrics")).text
    assert (
        'http_requests_total{method="GET",route="/quotes",service="gateway",status="200"}' in text
    )


async def test_cors_preflight_is_answered_at_the_gateway(client: httpx2.AsyncClient) -> None:
    allowed = await client.options(
        "/chat/echo",
        headers={
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-allow-headers"] == "authorization, content-type"
    refused = await client.options(
        "/chat/echo",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert "access-control-allow-origin" not in refused.headers


async def test_cors_headers_on_answers_to_allowed_origins_only(client: httpx2.AsyncClient) -> None:
    mine = await client.get("/quotes/echo", headers={"Origin": CORS_ORIGIN})
    assert mine.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "X-Request-ID" in mine.headers["access-control-expose-headers"]
    other = await client.get("/quotes/echo", headers={"Origin": "https://evil.example"})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


async def test_home_page_lists_services_with_health(client: httpx2.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<html lang="en">' in html
    assert 'href="/quotes/"' in html
    assert 'data-service="quotes" data-state="ready"' in html
    assert 'data-service="feeds" data-state="down"' in html
    assert 'data-service="imaging" data-state="absent"' in html


async def test_docs_page_and_its_assets_are_served_locally(client: httpx2.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "/openapi.json" in page.text
    script = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000
    assert (await client.get("/docs/assets/swagger-ui.css")).status_code == 200


@pytest.fixture
async def documented(
    stores: Stores, issuer: TokenIssuer, tmp_path: Path
) -> AsyncIterator[tuple[RunningGateway, AsyncExitStack]]:
    """auth, quotes and chat each with their own schema (two disagree on `Item`); chat can be
    stopped by the test."""
    async with AsyncExitStack() as stack:
        auth = await stack.enter_async_context(
            serve_in_process(documented_service("auth", {"type": "object", "title": "A"}))
        )
        quotes = await stack.enter_async_context(
            serve_in_process(documented_service("quotes", {"type": "string", "title": "B"}))
        )
        chat_stack = AsyncExitStack()
        chat = await chat_stack.enter_async_context(
            serve_in_process(documented_service("chat", {"type": "object", "title": "A"}))
        )
        stack.push_async_callback(chat_stack.aclose)
        env = {
            "GATEWAY_AUTH_URLS": auth,
            "GATEWAY_QUOTES_URLS": quotes,
            "GATEWAY_CHAT_URLS": chat,
            "GATEWAY_FEEDS_URLS": "",
            "GATEWAY_IMAGING_URLS": "",
            "GATEWAY_COMPUTE_URLS": "",
            "GATEWAY_OPENAPI_CACHE_SECONDS": "0",
        }
        gateway = await stack.enter_async_context(
            run_gateway(stores=stores, jwks_url=issuer.jwks_url, log_dir=tmp_path, env=env)
        )
        yield gateway, chat_stack


async def test_merged_openapi_and_readiness_follow_the_services(
    documented: tuple[RunningGateway, AsyncExitStack],
) -> None:
    gateway, chat = documented
    async with httpx2.AsyncClient(base_url=gateway.base_url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert set(ready.json()["checks"]) == {"redis", "auth", "quotes", "chat"}

        merged = (await http.get("/openapi.json")).json()
        assert set(merged["paths"]) == {"/auth/items", "/quotes/items", "/chat/items"}
        schemas = merged["components"]["schemas"]
        # Same name, same schema: kept once. Same name, another schema: renamed, refs follow.
        assert schemas["Item"] == {"type": "object", "title": "A"}
        assert schemas["quotes__Item"] == {"type": "string", "title": "B"}
        quotes_ref = merged["paths"]["/quotes/items"]["get"]["responses"]["200"]["content"]
        assert (
            quotes_ref["application/json"]["schema"]["$ref"] == "#/components/schemas/quotes__Item"
        )
        chat_ref = merged["paths"]["/chat/items"]["get"]["responses"]["200"]["content"]
        assert chat_ref["application/json"]["schema"]["$ref"] == "#/components/schemas/Item"

        await chat.aclose()  # the chat service goes away

        # Readiness answers are reused for a second: poll until the change shows.
        deadline = time.monotonic() + 10
        while (down := await http.get("/readyz")).status_code != 503:
            assert time.monotonic() < deadline, "readiness never noticed the service leave"
            await asyncio.sleep(0.1)
        assert down.headers["content-type"] == PROBLEM
        assert down.json()["checks"]["chat"]["ok"] is False
        assert down.json()["checks"]["auth"]["ok"] is True
        without_chat = (await http.get("/openapi.json")).json()
        assert set(without_chat["paths"]) == {"/auth/items", "/quotes/items"}
        assert without_chat["x-missing-services"] == ["chat"]
