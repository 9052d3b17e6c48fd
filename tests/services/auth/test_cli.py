"""`python -m services.auth ...` as real processes: create-user (stdin password), setup, serve."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import httpx2

from tests.services.auth.conftest import (
    AuthServer,
    assert_problem,
    me,
    new_address,
    new_username,
    run_cli,
    tokens_for,
)
from tests.support.servers import ServiceProcess, free_port

PASSWORD = "typed on stdin"


async def test_create_user_reads_the_password_from_stdin(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    username = new_username("cli")
    result = await run_cli(auth_server.env, "create-user", username, stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["username"] == username
    assert created["roles"] == []

    tokens = await tokens_for(client, username, PASSWORD)
    profile = (await me(client, tokens["access_token"])).json()
    assert profile == {**profile, "id": created["id"], "username": username, "roles": []}


async def test_create_user_admin(client: httpx2.AsyncClient, auth_server: AuthServer) -> None:
    username = new_username("admin")
    result = await run_cli(auth_server.env, "create-user", username, "--admin", stdin=PASSWORD)
    assert result.returncode == 0, result.stderr

    tokens = await tokens_for(client, username, PASSWORD)
    assert (await me(client, tokens["access_token"])).json()["roles"] == ["admin"]


async def test_create_user_refuses_bad_input_and_stores_nothing(
    auth_server: AuthServer, db: asyncpg.Connection
) -> None:
    taken = new_username("taken")
    assert (await run_cli(auth_server.env, "create-user", taken, stdin=PASSWORD)).returncode == 0
    before = await db.fetchval("SELECT count(*) FROM user_account")

    cases = [
        ((taken,), PASSWORD, "taken"),
        ((new_username(),), "short", "password"),
        (("Not-Valid",), PASSWORD, "username"),
    ]
    for args, password, complaint in cases:
        result = await run_cli(auth_server.env, "create-user", *args, stdin=password)
        assert result.returncode == 1, (args, result)
        assert complaint in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert await db.fetchval("SELECT count(*) FROM user_account") == before


async def test_setup_is_idempotent(auth_server: AuthServer, db: asyncpg.Connection) -> None:
    keys_before = await db.fetchval("SELECT count(*) FROM signing_key WHERE expires_at IS NULL")
    # The service is running on this database already: setup finds nothing to do.
    result = await run_cli(auth_server.env, "setup")
    assert result.returncode == 0, result.stderr
    assert "0 migration(s) applied" in result.stderr
    keys_after = await db.fetchval("SELECT count(*) FROM signing_key WHERE expires_at IS NULL")
    assert keys_before == keys_after == 1


async def test_serve_runs_the_service_on_its_configured_port(
    auth_server: AuthServer, tmp_path: Path
) -> None:
    port = free_port()
    process = ServiceProcess(
        "services.auth",
        env={**auth_server.env, "AUTH_PORT": str(port)},
        log_path=tmp_path / "auth.log",
    )
    process.start()
    try:
        base = f"http://127.0.0.1:{port}"
        await process.wait_ready(f"{base}/readyz")
        async with httpx2.AsyncClient(base_url=base) as http:
            ready = (await http.get("/readyz")).json()
            assert ready["checks"]["signing_key"]["ok"] is True
            # The instance shares users, keys and logins with every other instance.
            username = new_username()
            created = await http.post(
                "/auth/users", json={"username": username, "password": PASSWORD}
            )
            assert created.status_code == 201
            tokens = await tokens_for(http, username, PASSWORD)
            assert (await me(http, tokens["access_token"])).status_code == 200
            assert_problem(await me(http, "not-a-token"), 401)
            # Served this way, the client address is the gateway's X-Forwarded-For: one client
            # locked out leaves the others (all arriving from the gateway's address) alone.
            locked, other = new_address(), new_address()
            for _ in range(auth_server.settings.throttle_ip_failures):
                await _guess(http, locked)
            assert_problem(await _guess(http, locked), 429)
            assert_problem(await _guess(http, other), 401)
    finally:
        process.stop()


async def _guess(http: httpx2.AsyncClient, address: str) -> httpx2.Response:
    return await http.post(
        "/auth/token",
        data={"grant_type": "password", "username": new_username(), "password": "a guess"},
        headers={"X-Forwarded-For": address},
    )
