"""Schema migrations: a schema per service, ordered `NNNN_name.sql` files, each applied once in
its own transaction and recorded in `<schema>.schema_migration`.

Several instances may start at once: a PostgreSQL advisory lock per schema makes them take turns,
so the second one finds the work done. A file that was changed after it was applied is refused
rather than silently skipped.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

logger = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        found.append(Migration(version=path.stem, path=path))
    return found


async def apply_migrations(dsn: str, *, schema: str, directory: Path) -> list[str]:
    """Apply what is missing; return the versions applied by this call."""
    if not _SCHEMA_NAME.match(schema):
        raise MigrationError(f"invalid schema name {schema!r}")
    migrations = discover(directory)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrations:{schema}")
        try:
            return await _apply_locked(conn, schema, migrations)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"migrations:{schema}")
    finally:
        await conn.close()


async def _apply_locked(
    conn: asyncpg.Connection, schema: str, migrations: list[Migration]
) -> list[str]:
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    await conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migration (
                version text CONSTRAINT schema_migration_pk PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )"""
    )
    # `schema` matched _SCHEMA_NAME above: an identifier, safe to interpolate.
    rows = await conn.fetch(f"SELECT version, checksum FROM {schema}.schema_migration")  # noqa: S608
    applied = {row["version"]: row["checksum"] for row in rows}
    done = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(f"{schema}: {migration.version} changed after it was applied")
            continue
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {schema}, public")
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {schema}.schema_migration (version, checksum) VALUES ($1, $2)",  # noqa: S608
                migration.version,
                migration.checksum,
            )
        logger.info("applied migration %s.%s", schema, migration.version)
        done.append(migration.version)
    return done
