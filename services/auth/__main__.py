"""`python -m services.auth [serve|setup|create-user NAME [--admin]|rotate-key]`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from redis.asyncio import Redis

from services.auth.config import AuthSettings
from services.auth.keys import KeyRing, ensure_signing_key, key_box, rotate_signing_key
from services.auth.passwords import PasswordHashing
from services.auth.repository import AuthRepository
from services.auth.service import AuthService
from shared.cli import Command, main
from shared.db import create_pool
from shared.errors import ProblemError
from shared.redis_client import create_redis
from shared.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@asynccontextmanager
async def _repository(settings: AuthSettings) -> AsyncIterator[AuthRepository]:
    pool = await create_pool(str(settings.database_url), schema=settings.service_name, max_size=2)
    try:
        yield AuthRepository(pool)
    finally:
        await pool.close()


async def _after_migrations(settings: ServiceSettings) -> None:
    assert isinstance(settings, AuthSettings)
    async with _repository(settings) as repo:
        if await ensure_signing_key(repo, key_box(settings)):
            print("auth: signing key created", file=sys.stderr)


def _read_password(username: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {username}: ")
    # One line from a pipe; only the line break is not part of the password.
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


def _configure_create_user(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("username")
    parser.add_argument("--admin", action="store_true", help="give the user the admin role")


async def _create_user(args: argparse.Namespace) -> int:
    settings = AuthSettings()
    password = _read_password(args.username)
    roles = ("admin",) if args.admin else ()
    redis: Redis = create_redis(str(settings.redis_url))
    hashing = PasswordHashing(settings)
    try:
        async with _repository(settings) as repo:
            service = AuthService(
                settings=settings,
                repo=repo,
                redis=redis,
                keys=KeyRing(repo, key_box(settings), reload_seconds=settings.key_reload_seconds),
                hashing=hashing,
            )
            user = await service.register(username=args.username, password=password, roles=roles)
    except ProblemError as exc:
        print(f"create-user: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        hashing.close()
        await redis.aclose()
    print(json.dumps({"id": user.id, "username": user.username, "roles": list(user.roles)}))
    return 0


def _configure_rotate_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--activate-in",
        type=int,
        default=None,
        metavar="SECONDS",
        help="publish the new key now, sign with it after this long "
        "(default AUTH_KEY_ACTIVATION_DELAY_SECONDS)",
    )


async def _rotate_key(args: argparse.Namespace) -> int:
    settings = AuthSettings()
    delay = settings.key_activation_delay_seconds if args.activate_in is None else args.activate_in
    if delay < 0:
        print("rotate-key: --activate-in must not be negative", file=sys.stderr)
        return 2
    async with _repository(settings) as repo:
        new = await rotate_signing_key(repo, key_box(settings), settings, activation_delay=delay)
    print(json.dumps({"kid": new.kid, "activates_in_seconds": delay}))
    return 0


COMMANDS = {
    "create-user": Command(
        help="create a user; the password is read from stdin",
        run=_create_user,
        configure=_configure_create_user,
    ),
    "rotate-key": Command(
        help="add a new signing key; the old one stays published until its tokens expire",
        run=_rotate_key,
        configure=_configure_rotate_key,
    ),
}


if __name__ == "__main__":
    sys.exit(
        main(
            settings=AuthSettings(),
            app_factory="services.auth.app:create_app",
            migrations=MIGRATIONS,
            after_migrations=_after_migrations,
            commands=COMMANDS,
        )
    )
