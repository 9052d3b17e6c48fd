from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from shared.migrations import MigrationError, apply_migrations
from tests.support.stores import Stores


def write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql)


async def test_two_instances_starting_together_apply_each_migration_once(
    stores: Stores, tmp_path: Path
) -> None:
    # pg_sleep widens the window in which a second runner would step in without the lock.
    write(tmp_path, "0001_counter.sql", "CREATE TABLE run_log (id serial PRIMARY KEY);")
    write(tmp_path, "0002_insert.sql", "SELECT pg_sleep(0.3); INSERT INTO run_log DEFAULT VALUES;")

    results = await asyncio.gather(
        *(
            apply_migrations(stores.database_url, schema="mig_race", directory=tmp_path)
            for _ in range(4)
        )
    )

    assert sorted(len(applied) for applied in results) == [0, 0, 0, 2]
    conn = await asyncpg.connect(stores.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM mig_race.run_log") == 1
        versions = await conn.fetch("SELECT version FROM mig_race.schema_migration ORDER BY 1")
        assert [r["version"] for r in versions] == ["0001_counter", "0002_insert"]
    finally:
        await conn.close()


async def test_a_later_file_is_applied_on_the_next_start(stores: Stores, tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", "CREATE TABLE a (id int);")
    assert await apply_migrations(stores.database_url, schema="mig_next", directory=tmp_path) == [
        "0001_a"
    ]
    write(tmp_path, "0002_b.sql", "CREATE TABLE b (id int);")
    assert await apply_migrations(stores.database_url, schema="mig_next", directory=tmp_path) == [
        "0002_b"
    ]


async def test_a_failing_migration_leaves_nothing_half_done(stores: Stores, tmp_path: Path) -> None:
    write(tmp_path, "0001_bad.sql", "CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(asyncpg.PostgresError):
        await apply_migrations(stores.database_url, schema="mig_bad", directory=tmp_path)
    conn = await asyncpg.connect(stores.database_url)
    try:
        assert await conn.fetchval("SELECT to_regclass('mig_bad.half')") is None
        assert await conn.fetchval("SELECT count(*) FROM mig_bad.schema_migration") == 0
    finally:
        await conn.close()


async def test_an_applied_file_that_changed_is_refused(stores: Stores, tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", "CREATE TABLE a (id int);")
    await apply_migrations(stores.database_url, schema="mig_changed", directory=tmp_path)
    write(tmp_path, "0001_a.sql", "CREATE TABLE a (id bigint);")
    with pytest.raises(MigrationError, match="changed"):
        await apply_migrations(stores.database_url, schema="mig_changed", directory=tmp_path)


async def test_badly_named_files_are_refused(stores: Stores, tmp_path: Path) -> None:
    write(tmp_path, "first.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN"):
        await apply_migrations(stores.database_url, schema="mig_names", directory=tmp_path)
