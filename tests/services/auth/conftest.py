"""The auth service for tests: migrations applied to the run's database, the real app served on a
loopback socket, and clients that each come from an address of their own (X-Forwarded-For, as the
gateway sets it) so login throttling of one test never spills into another."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx2
import pytest
from redis.asyncio import Redis

from services.auth.__main__ import MIGRATIONS
from services.auth.app import create_app
from services.auth.config import AuthSettings
from shared.migrations import apply_migrations
from tests.support.servers import ROOT, serve_in_process
from tests.support.stores import Stores

# Cheap hashing for a fast suite; production keeps argon2-cffi's defaults.
TEST_ENV = {
    "AUTH_ARGON2_TIME_COST": "1",
    "AUTH_ARGON2_MEMORY_KIB": "8",
    "AUTH_ARGON2_PARALLELISM": "1",
    "AUTH_KEY_ACTIVATION_DELAY_SECONDS": "0",
    "AUTH_KEY_RELOAD_SECONDS": "0.2",
    "AUTH_THROTTLE_USERNAME_FAILURES": "3",
    "AUTH_THROTTLE_IP_FAILURES": "6",
    "AUTH_THROTTLE_WINDOW_SECONDS": "600",
    "AUTH_SECRET_KEY": "test-secret-key-for-this-run",
}

DEFAULT_PASSWORD = "correct horse"

_addresses = itertools.count(1)


def new_address() -> str:
    """A client address no other test uses (TEST-NET-2 and beyond, never routed)."""
    n = next(_addresses)
    return f"198.{18 + n // 65536}.{(n // 256) % 256}.{n % 256}"


def new_username(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class AuthServer:
    base_url: str
    settings: AuthSettings
    stores: Stores
    env: dict[str, str]

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/auth/.well-known/jwks.json"


@pytest.fixture(scope="session")
async def auth_server(stores: Stores) -> AsyncIterator[AuthServer]:
    await apply_migrations(stores.database_url, schema="auth", directory=MIGRATIONS)
    env = {**stores.env(), **TEST_ENV}
    settings = AuthSettings(
        **{name.lower().removeprefix("auth_"): value for name, value in env.items()}
    )
    async with serve_in_process(create_app(settings)) as base_url:
        yield AuthServer(base_url=base_url, settings=settings, stores=stores, env=env)


@pytest.fixture
async def client(auth_server: AuthServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(
        base_url=auth_server.base_url,
        headers={"X-Forwarded-For": new_address()},
        timeout=10.0,
    ) as http:
        yield http


@pytest.fixture(scope="session")
async def db(auth_server: AuthServer) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(auth_server.stores.database_url)
    await conn.execute("SET search_path TO auth")
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def redis(auth_server: AuthServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(auth_server.stores.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def register(
    client: httpx2.AsyncClient, username: str | None = None, password: str = DEFAULT_PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/auth/users", json={"username": username or new_username(), "password": password}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def login(client: httpx2.AsyncClient, username: str, password: str) -> httpx2.Response:
    return await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )


async def tokens_for(client: httpx2.AsyncClient, username: str, password: str) -> dict[str, Any]:
    response = await login(client, username, password)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def refresh(client: httpx2.AsyncClient, refresh_token: str) -> httpx2.Response:
    return await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


async def me(client: httpx2.AsyncClient, access_token: str) -> httpx2.Response:
    return await client.get("/auth/me", headers={"Authorization": f"Bearer {access_token}"})


def assert_problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["status"] == status
    assert body["title"]
    return body


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


async def run_cli(
    env: Mapping[str, str], *args: str, stdin: str = "", deadline_s: float = 60.0
) -> CliResult:
    """`python -m services.auth ARGS` as a real process, stdin fed, output captured."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.auth",
        *args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(stdin.encode()), deadline_s)
    assert process.returncode is not None
    return CliResult(process.returncode, stdout.decode(), stderr.decode())
