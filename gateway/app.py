"""The gateway app: a thin ASGI dispatcher in front of two halves.

- A service prefix (`/auth`, `/quotes`, ...) goes to the proxy, a plain ASGI callable: this is the
  hot path, kept free of framework routing and middleware layers (it records its own request id,
  metrics and access log).
- Everything else (home page, `/docs`, `/openapi.json`, `/healthz`, `/readyz`, `/metrics`) is the
  gateway's own FastAPI app, built like every service with `shared.app.create_service_app`.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import pages
from gateway.accesslog import AccessLog
from gateway.config import GatewaySettings
from gateway.cors import Cors
from gateway.guard import Guard, VerifiedTokens
from gateway.openapi import MergedOpenApi
from gateway.policy import SERVICES, limits_by_service, service_of
from gateway.proxy import HttpProxy, Runtime
from gateway.readiness import service_checks
from gateway.upstream_client import UpstreamClient
from gateway.upstreams import UpstreamPool
from gateway.websocket import WebSocketProxy
from shared.app import create_service_app

VERSION = "0.1.0"
# FastAPI's own schema and CDN-backed docs routes, replaced by the merged ones in `pages`.
_DEFAULT_DOC_ROUTES = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


class Gateway:
    def __init__(self, api: FastAPI, http: HttpProxy, websocket: WebSocketProxy) -> None:
        self.api = api
        self.http = http
        self.websocket = websocket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            service = service_of(scope["path"])
            if service is not None:
                await self.http(scope, receive, send, service)
                return
        elif scope["type"] == "websocket":
            service = service_of(scope["path"])
            if service is not None:
                await self.websocket(scope, receive, send, service)
                return
        await self.api(scope, receive, send)


def create_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=0,
        limit_per_host=settings.upstream_max_connections,
        # Below uvicorn's 5 s keep-alive: the gateway drops an idle connection before the service
        # does, so it rarely sends on a socket that is being closed under it.
        keepalive_timeout=4.0,
        ttl_dns_cache=300,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # One session serves every user: it must never keep a cookie.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Bodies pass as they are (compressed stays compressed); no header the client did not send.
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        trust_env=False,
        requote_redirect_url=False,
    )


def create_app(settings: GatewaySettings | None = None) -> ASGIApp:
    settings = settings or GatewaySettings()
    # Health and schema fetches are routine; the access log already tells what was asked.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    pools = {
        name: UpstreamPool(
            name, settings.service_urls(name), down_seconds=settings.upstream_down_seconds
        )
        for name in SERVICES
    }
    runtime = Runtime()
    merged_openapi = MergedOpenApi(
        pools,
        cache_s=settings.openapi_cache_seconds,
        title="tinkerstack",
        version=VERSION,
        rate_limited=settings.rate_limit_ip > 0 or settings.rate_limit_user > 0,
    )

    @asynccontextmanager
    async def open_proxy(state: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        session = create_session(settings)
        runtime.session = session
        client = UpstreamClient(
            connect_timeout_s=settings.connect_timeout_seconds,
            max_connections=settings.upstream_max_connections,
            # Below uvicorn's 5 s keep-alive, as for aiohttp's connector.
            keepalive_s=4.0,
        )
        runtime.client = client
        runtime.guard = Guard(
            tokens=VerifiedTokens(state["verifier"]),
            redis=state["redis"],
            namespace=settings.namespace,
            ip_limit=settings.rate_limit_ip,
            user_limit=settings.rate_limit_user,
            window_s=settings.rate_limit_window_seconds,
        )
        if settings.access_log:
            runtime.access_log = AccessLog(service="gateway", json_lines=settings.json_logs)
            runtime.access_log.start()
        # Everything imported and opened so far lives as long as the process: moving it out of
        # the collector's generations makes each collection cheaper on the hot path, and a
        # larger first generation makes collections rarer (a proxied request allocates a few
        # hundred objects, nearly all freed by reference counting). Measured: about a quarter of
        # the gateway's CPU per request.
        gc.freeze()
        gc.set_threshold(10_000, 50, 100)
        try:
            yield {"upstreams": pools, "openapi": merged_openapi}
        finally:
            if runtime.access_log is not None:
                await runtime.access_log.stop()
            runtime.session = runtime.guard = runtime.access_log = runtime.client = None
            client.close()
            await session.close()

    api = create_service_app(
        settings,
        title="tinkerstack gateway",
        description="The edge of the stack: routing, tokens, rate limits, docs and health.",
        routers=[pages.router],
        use_db=False,
        use_redis=True,
        extra_lifespan=open_proxy,
        readiness_checks=service_checks(pools),
        version=VERSION,
    )
    api.router.routes[:] = [
        r for r in api.router.routes if getattr(r, "path", None) not in _DEFAULT_DOC_ROUTES
    ]
    api.include_router(pages.router)
    for path, app, name in pages.static_mounts():
        api.mount(path, app, name=name)

    gateway: ASGIApp = Gateway(
        api,
        HttpProxy(
            pools=pools,
            limits=limits_by_service(settings),
            runtime=runtime,
            connect_timeout_s=settings.connect_timeout_seconds,
            checks_public_routes=settings.rate_limit_ip > 0,
        ),
        WebSocketProxy(
            pools=pools, runtime=runtime, connect_timeout_s=settings.connect_timeout_seconds
        ),
    )
    if settings.cors_origin_list:
        gateway = Cors(
            gateway, origins=settings.cors_origin_list, max_age_s=settings.cors_max_age_seconds
        )
    return gateway
