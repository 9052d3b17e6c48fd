"""Real stores for a test run: a fresh PostgreSQL database and a namespace of its own for Redis keys
and RabbitMQ names, so runs never see each other's data."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg

SERVER_DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass(frozen=True)
class Stores:
    database_url: str
    redis_url: str
    amqp_url: str
    namespace: str

    def env(self) -> dict[str, str]:
        """The stack-wide environment that points a service at these stores."""
        return {
            "ENVIRONMENT": "test",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "AMQP_URL": self.amqp_url,
            "NAMESPACE": self.namespace,
        }


@asynccontextmanager
async def fresh_stores() -> AsyncIterator[Stores]:
    suffix = uuid.uuid4().hex[:10]
    database = f"ts_test_{suffix}"
    admin_url = with_database(SERVER_DATABASE_URL, "postgres")
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    try:
        yield Stores(
            database_url=with_database(SERVER_DATABASE_URL, database),
            redis_url=REDIS_URL,
            amqp_url=AMQP_URL,
            namespace=f"t{suffix}",
        )
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()
