"""The stack end to end: the real gateway, auth and quotes processes on real stores; a user
registers, signs in, uses a protected endpoint, and loses access when the login is revoked."""

from __future__ import annotations

import asyncio
import time

import httpx2

from tests.e2e.conftest import Stack
from tests.support.servers import ServiceProcess


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


async def logged(process: ServiceProcess, text: str, deadline_s: float = 10.0) -> bool:
    """Whether `text` shows in the process's log within the deadline: a request's log lines
    may be written just after its response has left."""
    deadline = time.monotonic() + deadline_s
    while text not in process.log():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


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
    assert await logged(stack.quotes, "e2e-trace-42")


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
