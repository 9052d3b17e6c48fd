"""The app factory, through a small service built with it and served on a real socket."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx2
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from shared.app import create_service_app
from shared.deps import CurrentUser, DbPool, Redis
from shared.errors import Conflict
from shared.health import CheckResult
from shared.settings import ServiceSettings
from tests.support.servers import serve_in_process
from tests.support.stores import Stores
from tests.support.tokens import TokenIssuer, serve_token_issuer


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")
    service_name: ClassVar[str] = "demo"


class Item(BaseModel):
    name: str = Field(min_length=1, max_length=10)
    size: int = Field(ge=1)


router = APIRouter(prefix="/demo")


@router.post("/items", status_code=201)
async def create_item(item: Item, db: DbPool) -> dict[str, Any]:
    if item.name == "taken":
        raise Conflict("That name is taken")
    return {"name": item.name, "db": await db.fetchval("SELECT 41 + 1")}


@router.get("/items/{name}")
async def get_item(name: str) -> dict[str, str]:
    return {"name": name}


@router.delete("/items/{name}", status_code=204)
async def delete_item(name: str) -> None:
    return None


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, str]:
    return {"user": user.username}


@router.post("/hits")
async def hit(redis: Redis) -> dict[str, int]:
    return {"hits": int(await redis.incr("demo-hits"))}


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals")


async def flaky_source(state: Mapping[str, Any]) -> CheckResult:
    return CheckResult(ok=False, detail="source x failing", critical=False)


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[TokenIssuer]:
    async with serve_token_issuer() as running:
        yield running


@pytest.fixture(scope="module")
async def demo(stores: Stores, issuer: TokenIssuer) -> AsyncIterator[str]:
    settings = DemoSettings(
        database_url=stores.database_url,
        redis_url=stores.redis_url,
        namespace=stores.namespace,
        jwks_url=issuer.jwks_url,
        environment="test",
    )
    app = create_service_app(
        settings,
        title="demo",
        description="demo",
        routers=[router],
        readiness_checks={"source": flaky_source},
    )
    async with serve_in_process(app) as base_url:
        yield base_url


@pytest.fixture
async def client(demo: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=demo) as http:
        yield http


async def test_a_good_request_uses_the_pool(client: httpx2.AsyncClient) -> None:
    response = await client.post("/demo/items", json={"name": "a", "size": 1})
    assert response.status_code == 201
    assert response.json() == {"name": "a", "db": 42}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"name": "", "size": 1}', "application/json"),
        (b'{"name": "a", "size": "big"}', "application/json"),
        (b'{"name": "a"', "application/json"),
        (b"name=a&size=1", "application/x-www-form-urlencoded"),
        (b"[]", "application/json"),
    ],
)
async def test_bad_input_is_a_problem_422(
    client: httpx2.AsyncClient, body: bytes, content_type: str
) -> None:
    response = await client.post(
        "/demo/items", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["instance"] == "/demo/items"
    assert problem["errors"]
    assert "input" not in problem["errors"][0]


@pytest.mark.parametrize(
    "content", [b'{"name": "\xff", "size": 1}', b"\xff\xfe{}"], ids=["invalid UTF-8", "UTF-16 mark"]
)
async def test_a_body_that_is_not_utf8_is_malformed_json(
    client: httpx2.AsyncClient, content: bytes
) -> None:
    response = await client.post(
        "/demo/items", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["type"] == "json_invalid"


async def test_a_domain_error_is_a_problem_with_its_status(client: httpx2.AsyncClient) -> None:
    response = await client.post("/demo/items", json={"name": "taken", "size": 1})
    assert response.status_code == 409
    assert response.json()["detail"] == "That name is taken"


async def test_unknown_paths_and_methods_are_problems(client: httpx2.AsyncClient) -> None:
    missing = await client.get("/demo/nothing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong_method = await client.delete("/demo/items")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"


async def test_a_405_allows_every_method_of_the_path(client: httpx2.AsyncClient) -> None:
    """One route per method on one path: the answer to another method names them all."""
    response = await client.put("/demo/items/a", json={})
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "DELETE, GET"


async def test_an_unexpected_error_is_a_bare_500_without_internals(
    client: httpx2.AsyncClient,
) -> None:
    response = await client.get("/demo/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in response.text


async def test_a_sane_request_id_is_echoed_and_logged(
    client: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="access"):
        response = await client.get("/healthz", headers={"X-Request-ID": "client-id-1"})
    assert response.headers["x-request-id"] == "client-id-1"
    assert any(getattr(r, "request_id", None) == "client-id-1" for r in caplog.records)


async def test_an_insane_request_id_is_replaced(client: httpx2.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 300})
    assert response.headers["x-request-id"] != "a b\tc" + "x" * 300
    assert len(response.headers["x-request-id"]) == 32


async def test_metrics_count_requests_by_route_template(client: httpx2.AsyncClient) -> None:
    await client.post("/demo/items", json={"name": "b", "size": 2})
    text = (await client.get("/metrics")).text
    assert 'route="/demo/items"' in text
    assert 'service="demo"' in text


async def test_readiness_reports_each_dependency(client: httpx2.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["postgres"]["ok"] is True
    assert checks["redis"]["ok"] is True
    assert checks["source"] == {
        "ok": False,
        "latency_ms": checks["source"]["latency_ms"],
        "detail": "source x failing",
        "critical": False,
    }


async def test_protected_routes_need_a_valid_token(
    client: httpx2.AsyncClient, issuer: TokenIssuer
) -> None:
    missing = await client.get("/demo/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    good = await client.get(
        "/demo/me", headers={"Authorization": f"Bearer {issuer.issue(name='carol')}"}
    )
    assert good.json() == {"user": "carol"}
    by_cookie = await client.get(
        "/demo/me", headers={"Cookie": f"access_token={issuer.issue(name='dan')}"}
    )
    assert by_cookie.json() == {"user": "dan"}
    expired = await client.get(
        "/demo/me", headers={"Authorization": f"Bearer {issuer.issue(lifetime=-100)}"}
    )
    assert expired.status_code == 401


async def test_readiness_fails_when_a_store_is_down(stores: Stores, issuer: TokenIssuer) -> None:
    settings = DemoSettings(
        database_url=stores.database_url,
        redis_url="redis://127.0.0.1:9/0",
        namespace=stores.namespace,
        jwks_url=issuer.jwks_url,
    )
    app = create_service_app(settings, title="demo", description="demo", routers=[router])
    async with (
        serve_in_process(app, ready_path="/healthz") as base_url,
        httpx2.AsyncClient(base_url=base_url) as http,
    ):
        response = await http.get("/readyz")
        hit = await http.post("/demo/hits")
    assert hit.status_code == 503
    assert hit.headers["content-type"] == "application/problem+json"
    assert hit.headers["retry-after"] == "5"
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["checks"]["redis"]["ok"] is False
    assert response.json()["checks"]["postgres"]["ok"] is True
