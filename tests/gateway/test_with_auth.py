"""The gateway in front of the real auth service (both as processes): an account made, a login,
the user's own resource behind the gateway's token check, and a logout that the gateway honours
at once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx2
import pytest

from tests.gateway.harness import run_gateway
from tests.services.auth.conftest import TEST_ENV
from tests.support.servers import ServiceProcess, free_port
from tests.support.stores import Stores


@pytest.fixture(scope="module")
async def stack(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    logs = tmp_path_factory.mktemp("with-auth")
    port = free_port()
    auth_url = f"http://127.0.0.1:{port}"
    env = {**stores.env(), **TEST_ENV, "AUTH_PORT": str(port)}
    setup = ServiceProcess("services.auth", env=env, log_path=logs / "setup.log", args=("setup",))
    setup.start()
    assert setup.process is not None
    assert setup.process.wait(60) == 0, setup.log()
    auth = ServiceProcess("services.auth", env=env, log_path=logs / "auth.log")
    auth.start()
    try:
        await auth.wait_ready(f"{auth_url}/readyz")
        async with run_gateway(
            stores=stores,
            jwks_url=f"{auth_url}/auth/.well-known/jwks.json",
            log_dir=logs,
            env={"GATEWAY_AUTH_URLS": auth_url},
        ) as gateway:
            yield gateway.base_url
    finally:
        auth.stop()


async def test_sign_up_sign_in_me_and_logout_through_the_gateway(stack: str) -> None:
    username = f"gw-{uuid.uuid4().hex[:10]}"
    async with httpx2.AsyncClient(base_url=stack, timeout=30) as http:
        created = await http.post(
            "/auth/users", json={"username": username, "password": "correct horse"}
        )
        assert created.status_code == 201, created.text
        login = await http.post(
            "/auth/token",
            data={"grant_type": "password", "username": username, "password": "correct horse"},
        )
        assert login.status_code == 200, login.text
        tokens = login.json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

        assert (await http.get("/auth/me")).status_code == 401  # stopped at the gateway
        me = await http.get("/auth/me", headers=bearer)
        assert me.status_code == 200
        assert me.json()["username"] == username

        assert (await http.post("/auth/revoke", json={"token": tokens["refresh_token"]})).is_success
        after = await http.get("/auth/me", headers=bearer)
    assert after.status_code == 401
    assert after.json()["detail"] == "The token was revoked"
