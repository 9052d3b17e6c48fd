"""Running the quotes service for tests: its migrations applied to the run's database, the app
served on a real socket, the tables emptied between tests that count rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from services.quotes.app import create_app
from services.quotes.config import QuotesSettings
from services.quotes.repository import NewQuote, QuotesRepository
from shared.db import create_pool
from shared.migrations import apply_migrations
from tests.support.servers import serve_in_process
from tests.support.stores import Stores

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "quotes" / "migrations"
CLASSICS = Path(__file__).resolve().parent / "data" / "classics.fortune"


def quotes_settings(stores: Stores, **overrides: Any) -> QuotesSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": stores.database_url,
        "redis_url": stores.redis_url,
        "namespace": stores.namespace,
        "collector_enabled": False,
        "fortunes_dir": Path("/nonexistent"),
        **overrides,
    }
    return QuotesSettings(**values)


async def migrate(stores: Stores) -> None:
    await apply_migrations(stores.database_url, schema="quotes", directory=MIGRATIONS)


@asynccontextmanager
async def running_quotes(stores: Stores, **overrides: Any) -> AsyncIterator[str]:
    await migrate(stores)
    async with serve_in_process(create_app(quotes_settings(stores, **overrides))) as base_url:
        yield base_url


async def connect(stores: Stores) -> asyncpg.Connection:
    return await asyncpg.connect(stores.database_url, server_settings={"search_path": "quotes"})


async def empty_tables(stores: Stores) -> None:
    conn = await connect(stores)
    try:
        await conn.execute(
            """TRUNCATE quote, sighting, source_status, quote_word, first_run_step, quote_term,
                   term_stat RESTART IDENTITY;
               UPDATE quote_counter SET last_seq = 0"""
        )
    finally:
        await conn.close()


async def add_quotes(stores: Stores, texts: Sequence[str]) -> list[int]:
    """Insert quotes the way the service does (numbered under the counter's lock); their ids."""
    pool = await create_pool(stores.database_url, schema="quotes")
    try:
        stored = await QuotesRepository(pool).insert_many(
            quotes=[NewQuote(text=text) for text in texts]
        )
    finally:
        await pool.close()
    return [quote["id"] for quote in stored]
