"""`python -m services.<name> [serve|setup|...]`: the command line every service shares.

- `serve` (the default) runs the app with uvicorn (uvloop, httptools).
- `setup` applies the service's migrations, then its own first-run step if it has one (idempotent:
  run it on every start). `make up` and the compose one-shot service call it.
- A service adds its own commands (auth's `create-user`, quotes' `import`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from shared.log import configure_logging
from shared.migrations import apply_migrations
from shared.settings import ServiceSettings


@dataclass(frozen=True)
class Command:
    help: str
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
    configure: Callable[[argparse.ArgumentParser], None] = field(default=lambda parser: None)


def serve(settings: ServiceSettings, app_factory: str, *, ws: str = "auto") -> None:
    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws=ws,
        log_config=None,
        # The gateway sets X-Forwarded-For; only it talks to services directly. Where it reaches
        # them from another address (containers, pods), FORWARDED_ALLOW_IPS (uvicorn's own name)
        # lists it; otherwise every client would look like the gateway (one login-throttle
        # bucket for everyone, say).
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
        timeout_graceful_shutdown=10,
    )


def main(
    *,
    settings: ServiceSettings,
    app_factory: str,
    migrations: Path | None,
    after_migrations: Callable[[ServiceSettings], Awaitable[None]] | None = None,
    commands: Mapping[str, Command] | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m services.{settings.service_name}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the HTTP server (default)")
    sub.add_parser("setup", help="apply migrations and first-run data")
    for name, command in (commands or {}).items():
        command.configure(sub.add_parser(name, help=command.help))
    args = parser.parse_args(argv)

    if args.command in (None, "serve"):
        serve(settings, app_factory)
        return 0
    configure_logging(
        service=settings.service_name, level=settings.log_level, json_lines=settings.json_logs
    )
    if args.command == "setup":
        return asyncio.run(_setup(settings, migrations, after_migrations))
    return asyncio.run((commands or {})[args.command].run(args))


async def _setup(
    settings: ServiceSettings,
    migrations: Path | None,
    after_migrations: Callable[[ServiceSettings], Awaitable[None]] | None,
) -> int:
    if migrations is not None:
        applied = await apply_migrations(
            str(settings.database_url), schema=settings.service_name, directory=migrations
        )
        print(f"{settings.service_name}: {len(applied)} migration(s) applied", file=sys.stderr)
    if after_migrations is not None:
        await after_migrations(settings)
    return 0
