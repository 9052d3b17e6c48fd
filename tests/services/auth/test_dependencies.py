"""When Redis does not answer, the endpoints that need it say 503 with Retry-After (never a 500),
readiness says so too, and what does not need Redis keeps working."""

from __future__ import annotations

import httpx2

from services.auth.app import create_app
from tests.services.auth.conftest import AuthServer, assert_problem, new_username
from tests.support.servers import free_port, serve_in_process

PASSWORD = "redis is down"


async def test_redis_down_gives_503_not_500(auth_server: AuthServer) -> None:
    # A port nobody listens on.
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = auth_server.settings.model_copy(update={"redis_url": dead_redis})
    async with (
        serve_in_process(create_app(settings), ready_path="/healthz") as base_url,
        httpx2.AsyncClient(base_url=base_url, timeout=10.0) as client,
    ):
        ready = await client.get("/readyz")
        assert_problem(ready, 503)
        assert ready.json()["checks"]["redis"]["ok"] is False

        # Accounts live in PostgreSQL only.
        username = new_username()
        created = await client.post(
            "/auth/users", json={"username": username, "password": PASSWORD}
        )
        assert created.status_code == 201

        # Logins need the throttle counters.
        login = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": username, "password": PASSWORD},
        )
        assert_problem(login, 503)
        assert int(login.headers["retry-after"]) > 0
