"""The service the gateway benchmark forwards to: a service built like every other one
(`shared.app.create_service_app`, its middleware and logs), with a trivial endpoint, one that
takes 10 ms, and the JWKS that verifies the benchmark's token.

`python -m bench.gateway_backend` (BENCH_PORT, BENCH_JWKS)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from fastapi import APIRouter, FastAPI
from pydantic_settings import SettingsConfigDict

from shared.app import create_service_app
from shared.cli import serve
from shared.settings import ServiceSettings


class BenchSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BENCH_", extra="ignore")
    service_name: ClassVar[str] = "bench"
    jwks: str = '{"keys": []}'


def create_app() -> FastAPI:
    settings = BenchSettings()
    jwks = json.loads(settings.jwks)
    router = APIRouter()

    async def ping() -> dict[str, Any]:
        return {"ok": True}

    async def slow() -> dict[str, Any]:
        await asyncio.sleep(0.010)
        return {"ok": True}

    async def keys() -> dict[str, Any]:
        return jwks  # type: ignore[no-any-return]

    for prefix in ("quotes", "chat"):
        router.add_api_route(f"/{prefix}/ping", ping)
        router.add_api_route(f"/{prefix}/slow", slow)
    router.add_api_route("/auth/.well-known/jwks.json", keys)
    return create_service_app(
        settings, title="bench", description="", routers=[router], use_db=False, use_redis=False
    )


if __name__ == "__main__":
    serve(BenchSettings(), "bench.gateway_backend:create_app")
