"""The auth service app: accounts, tokens, signing keys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI

from services.auth.config import AuthSettings
from services.auth.keys import KeyRing, key_box
from services.auth.passwords import PasswordHashing
from services.auth.repository import AuthRepository
from services.auth.routes import router
from services.auth.service import AuthService
from shared.app import State, create_service_app
from shared.health import CheckResult
from shared.jwks import TokenVerifier

logger = logging.getLogger(__name__)


async def _clean_up_periodically(repo: AuthRepository, interval: float) -> None:
    while True:
        try:
            deleted = await repo.delete_expired()
            if any(deleted.values()):
                logger.info("deleted expired %s", deleted)
        except Exception:
            # Housekeeping must not take the service down; the next round tries again.
            logger.exception("cleaning up expired logins and keys failed")
        await asyncio.sleep(interval)


async def _check_signing_key(state: Mapping[str, Any]) -> CheckResult:
    key = await state["keys"].signing_key()
    return CheckResult(ok=True, detail=f"kid {key.kid}")


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()

    @asynccontextmanager
    async def lifespan(state: State) -> AsyncIterator[State]:
        repo = AuthRepository(state["db"])
        keys = KeyRing(repo, key_box(settings), reload_seconds=settings.key_reload_seconds)
        # Loading makes the first key on a fresh database (safely, if several instances start).
        try:
            await keys.reload()
        except asyncpg.UndefinedTableError as exc:
            raise RuntimeError(
                "auth's tables are missing: run `python -m services.auth setup` first"
            ) from exc
        hashing = PasswordHashing(settings)
        service = AuthService(
            settings=settings, repo=repo, redis=state["redis"], keys=keys, hashing=hashing
        )
        # Auth verifies its own tokens against the ring in memory: same checks, no HTTP round trip.
        verifier = TokenVerifier(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        cleanup = asyncio.create_task(
            _clean_up_periodically(repo, settings.cleanup_interval_seconds)
        )
        try:
            yield {"auth": service, "keys": keys, "verifier": verifier}
        finally:
            cleanup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cleanup
            hashing.close()

    app = create_service_app(
        settings,
        title="tinkerstack auth",
        description="Accounts, access and refresh tokens, and the keys that verify them.",
        routers=[router],
        use_db=True,
        use_redis=True,
        use_amqp=False,
        extra_lifespan=lifespan,
        readiness_checks={"signing_key": _check_signing_key},
    )
    return app
