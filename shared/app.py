"""The app factory every service is built with, and the lifespan that opens (and closes, in
reverse) what the service uses: PostgreSQL pool, Redis client, RabbitMQ connection and bus, an
outbound HTTP client and the token verifier.

What is opened lands in the lifespan state, so handlers read it from `request.state`
(see `shared.deps` for the typed aliases).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import aio_pika
from fastapi import APIRouter, FastAPI
from starlette.routing import Route

from shared import health
from shared.bus import MessageBus
from shared.db import create_pool
from shared.errors import install_problem_handlers
from shared.health import CheckResult, ReadinessCheck
from shared.http_client import create_http_client
from shared.jwks import JwksVerifier
from shared.log import configure_logging
from shared.metrics import ObserveMiddleware, metrics_endpoint
from shared.redis_client import create_redis
from shared.request_id import RequestIdMiddleware
from shared.settings import ServiceSettings

State = dict[str, Any]
# A service's own start-up work, run after the shared resources are open; what it yields is
# added to the lifespan state.
ExtraLifespan = Callable[[State], AbstractAsyncContextManager[State]]


async def _check_db(state: Mapping[str, Any]) -> CheckResult:
    await state["db"].fetchval("SELECT 1")
    return CheckResult(ok=True)


async def _check_redis(state: Mapping[str, Any]) -> CheckResult:
    await state["redis"].ping()
    return CheckResult(ok=True)


async def _check_amqp(state: Mapping[str, Any]) -> CheckResult:
    connected = not state["amqp"].is_closed
    return CheckResult(ok=connected, detail=None if connected else "connection closed")


@asynccontextmanager
async def open_resources(
    settings: ServiceSettings, *, use_db: bool, use_redis: bool, use_amqp: bool
) -> AsyncIterator[State]:
    state: State = {"settings": settings}
    async with AsyncExitStack() as stack:
        http = create_http_client(
            proxy=str(settings.outbound_proxy_url) if settings.outbound_proxy_url else None
        )
        stack.push_async_callback(http.aclose)
        state["http"] = http
        if use_db:
            pool = await create_pool(str(settings.database_url), schema=settings.service_name)
            stack.push_async_callback(pool.close)
            state["db"] = pool
        if use_redis:
            redis = create_redis(str(settings.redis_url))
            stack.push_async_callback(redis.aclose)
            state["redis"] = redis
        if use_amqp:
            connection = await aio_pika.connect_robust(str(settings.amqp_url))
            stack.push_async_callback(connection.close)
            bus = MessageBus(connection, namespace=settings.namespace)
            await bus.start()
            state["amqp"], state["bus"] = connection, bus
        state["verifier"] = JwksVerifier(
            jwks_url=str(settings.jwks_url),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            http=http,
        )
        yield state


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    use_db: bool = True,
    use_redis: bool = True,
    use_amqp: bool = False,
    extra_lifespan: ExtraLifespan | None = None,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    configure_logging(
        service=settings.service_name, level=settings.log_level, json_lines=settings.json_logs
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with open_resources(
            settings, use_db=use_db, use_redis=use_redis, use_amqp=use_amqp
        ) as state:
            if extra_lifespan is None:
                yield state
                return
            async with extra_lifespan(state) as extra:
                yield {**state, **extra}

    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    checks: dict[str, ReadinessCheck] = {}
    if use_db:
        checks["postgres"] = _check_db
    if use_redis:
        checks["redis"] = _check_redis
    if use_amqp:
        checks["rabbitmq"] = _check_amqp
    checks.update(readiness_checks or {})
    app.state.readiness_checks = checks
    app.state.settings = settings

    install_problem_handlers(app)
    app.include_router(health.router)
    app.router.routes.append(Route("/metrics", metrics_endpoint, include_in_schema=False))
    for router in routers:
        app.include_router(router)
    # Outermost first: the request id is set before anything logs.
    app.add_middleware(ObserveMiddleware, service=settings.service_name)
    app.add_middleware(RequestIdMiddleware)
    return app
