"""PostgreSQL: one asyncpg pool per process, its connections bound to the service's schema."""

from __future__ import annotations

import json

import asyncpg


async def _init_connection(conn: asyncpg.Connection) -> None:
    # json/jsonb columns come and go as Python objects instead of strings.
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(
    dsn: str, *, schema: str, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        server_settings={"search_path": f"{schema},public", "application_name": schema},
        command_timeout=30,
    )
    assert pool is not None
    return pool
