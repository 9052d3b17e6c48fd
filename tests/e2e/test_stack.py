"""The stack end to end: the real gateway, auth and quotes processes on real stores; a user
registers, signs in, uses a protected endpoint, and loses access when the login is revoked."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import pytest

from tests.support.servers import ROOT, ServiceProcess, free_port
from tests.support.stores import Stores, fresh_stores

FORTUNES = (
    "Simple things should be simple.\n%\nA journey of a thousand miles begins with one step.\n%\n"
)


@dataclass
class Stack:
    gateway: str
    auth: ServiceProcess
    quotes: ServiceProcess


def setup(module: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", module, "setup"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
async def stores() -> AsyncIterator[Stores]:
    """Stores of its own: `setup` makes auth's signing key with this stack's secret."""
    async with fresh_stores() as created:
        yield created


@pytest.fixture(scope="module")
async def stack(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    logs = tmp_path_factory.mktemp("e2e-logs")
    fortunes = tmp_path_factory.mktemp("fortunes")
    (fortunes / "wisdom").write_text(FORTUNES)
    (fortunes / "wisdom.dat").write_bytes(b"")  # strfile's index marks a fortune file
    auth_port, quotes_port, gateway_port = free_port(), free_port(), free_port()
    env = {
        **stores.env(),
        "LOG_LEVEL": "INFO",
        "JWKS_URL": f"http://127.0.0.1:{auth_port}/auth/.well-known/jwks.json",
        "AUTH_PORT": str(auth_port),
        "AUTH_ARGON2_MEMORY_KIB": "1024",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_KEY_ACTIVATION_DELAY_SECONDS": "0",
        "QUOTES_PORT": str(quotes_port),
        "QUOTES_FORTUNES_DIR": str(fortunes),
        "GATEWAY_PORT": str(gateway_port),
        "GATEWAY_AUTH_URLS": f"http://127.0.0.1:{auth_port}",
        "GATEWAY_QUOTES_URLS": f"http://127.0.0.1:{quotes_port}",
        **{f"GATEWAY_{name}_URLS": "" for name in ("CHAT", "FEEDS", "IMAGING", "COMPUTE")},
    }
    setup("services.auth", env)
    setup("services.quotes", env)
    auth = ServiceProcess("services.auth", env=env, log_path=logs / "auth.log")
    quotes = ServiceProcess("services.quotes", env=env, log_path=logs / "quotes.log")
    gateway = ServiceProcess("gateway", env=env, log_path=logs / "gateway.log")
    processes = (auth, quotes, gateway)
    try:
        for process in processes:
            process.start()
        await auth.wait_ready(f"http://127.0.0.1:{auth_port}/readyz")
        await quotes.wait_ready(f"http://127.0.0.1:{quotes_port}/readyz")
        await gateway.wait_ready(f"http://127.0.0.1:{gateway_port}/readyz")
        yield Stack(gateway=f"http://127.0.0.1:{gateway_port}", auth=auth, quotes=quotes)
    finally:
        for process in reversed(processes):
            process.stop()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=stack.gateway, timeout=30) as http:
        yield http


async def sign_up(client: httpx2.AsyncClient, username: str) -> dict[str, str]:
    created = await client.post(
        "/auth/users", json={"username": username, "password": "correct horse"}
    )
    assert created.status_code == 201, created.text
    token = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": "correct horse"},
    )
    assert token.status_code == 200, token.text
    return dict(token.json())


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_a_new_user_signs_up_and_adds_a_quote(client: httpx2.AsyncClient) -> None:
    tokens = await sign_up(client, "alice")

    me = await client.get("/auth/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json()["username"] == "alice"

    anonymous = await client.post("/quotes", json={"text": "Anonymous wisdom."})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"

    added = await client.post(
        "/quotes",
        json={"text": "Premature optimisation is the root of all evil."},
        headers=bearer(tokens),
    )
    assert added.status_code == 201, added.text
    again = await client.post(
        "/quotes",
        json={"text": "premature  optimisation is the root of ALL evil."},
        headers=bearer(tokens),
    )
    assert again.status_code == 200
    assert again.json()["id"] == added.json()["id"]

    found = await client.get("/quotes/search", params={"q": "optimisation"})
    assert found.json()["items"][0]["id"] == added.json()["id"]


async def test_first_run_data_is_there(client: httpx2.AsyncClient) -> None:
    found = await client.get("/quotes/search", params={"q": "journey"})
    assert found.status_code == 200
    assert found.json()["total"] == 1


async def test_reusing_a_refresh_token_locks_the_login_out_at_the_gateway(
    client: httpx2.AsyncClient,
) -> None:
    tokens = await sign_up(client, "bob")
    rotated = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert rotated.status_code == 200
    reused = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert reused.status_code == 401

    for stolen in (tokens, rotated.json()):
        me = await client.get("/auth/me", headers=bearer(stolen))
        assert me.status_code == 401
        assert me.headers["www-authenticate"].startswith("Bearer")


async def test_the_request_id_travels_to_the_service_log_and_back(
    client: httpx2.AsyncClient, stack: Stack
) -> None:
    response = await client.get("/quotes/json/latest", headers={"X-Request-ID": "e2e-trace-42"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "e2e-trace-42"
    assert "e2e-trace-42" in stack.quotes.log()


async def test_the_gateway_is_ready_when_its_deployed_services_are(
    client: httpx2.AsyncClient,
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.text
    assert "auth" in body
    assert "quotes" in body


async def test_the_merged_schema_describes_both_services(client: httpx2.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/auth/token" in paths
    assert "/quotes/json/random" in paths
