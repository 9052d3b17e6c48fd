"""Typed FastAPI dependencies over the lifespan state: `DbPool`, `Redis`, `Bus`, `CurrentUser`."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
import httpx2
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis as RedisClient

from shared.bus import MessageBus
from shared.errors import Forbidden, Unauthorized
from shared.jwks import JwksVerifier, Principal, is_revoked
from shared.settings import ServiceSettings

ACCESS_TOKEN_COOKIE = "access_token"  # noqa: S105 (a cookie name)

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /auth/token")


# The getters are `async def` although they never wait: FastAPI runs a plain `def` dependency in
# a worker thread, a hop that costs more than the lookup itself.


def _state(request: Request, name: str) -> Any:
    return getattr(request.state, name)


async def get_db(request: Request) -> asyncpg.Pool:
    return _state(request, "db")  # type: ignore[no-any-return]


async def get_redis(request: Request) -> RedisClient:
    return _state(request, "redis")  # type: ignore[no-any-return]


async def get_bus(request: Request) -> MessageBus:
    return _state(request, "bus")  # type: ignore[no-any-return]


async def get_http(request: Request) -> httpx2.AsyncClient:
    return _state(request, "http")  # type: ignore[no-any-return]


async def get_settings(request: Request) -> ServiceSettings:
    return _state(request, "settings")  # type: ignore[no-any-return]


def bearer_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if credentials is not None:
        return credentials.credentials
    return request.cookies.get(ACCESS_TOKEN_COOKIE)


async def get_current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = bearer_token(request, credentials)
    if not token:
        raise Unauthorized("An access token is required")
    verifier: JwksVerifier = _state(request, "verifier")
    principal = await verifier.verify(token)
    settings: ServiceSettings = _state(request, "settings")
    if await is_revoked(_state(request, "redis"), settings.namespace, principal):
        raise Unauthorized("The token was revoked")
    return principal


async def get_admin(user: Annotated[Principal, Depends(get_current_user)]) -> Principal:
    if not user.is_admin:
        raise Forbidden("This needs the admin role")
    return user


DbPool = Annotated[asyncpg.Pool, Depends(get_db)]
Redis = Annotated[RedisClient, Depends(get_redis)]
Bus = Annotated[MessageBus, Depends(get_bus)]
HttpClient = Annotated[httpx2.AsyncClient, Depends(get_http)]
CurrentUser = Annotated[Principal, Depends(get_current_user)]
AdminUser = Annotated[Principal, Depends(get_admin)]
