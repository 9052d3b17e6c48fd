"""All SQL of the auth service: users, logins (token families), refresh tokens, signing keys.

Times that decide validity (expiry, activation) are computed by PostgreSQL's clock, one clock for
every instance.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

if TYPE_CHECKING:
    _Conn = PoolConnectionProxy[asyncpg.Record]

# Serialises the writers of signing keys (first key, rotation) across instances and the CLI.
_SIGNING_KEY_LOCK = "auth:signing-key"


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    password_hash: str
    roles: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class KeyRecord:
    kid: str
    public_jwk: dict[str, Any]
    private_key_encrypted: bytes
    activates_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class PublishedKeys:
    keys: list[KeyRecord]
    # PostgreSQL's clock when they were read: activation is judged against it.
    db_now: datetime


class RefreshOutcome(enum.Enum):
    ROTATED = "rotated"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REUSED = "reused"


@dataclass(frozen=True)
class RefreshResult:
    outcome: RefreshOutcome
    session_id: uuid.UUID | None = None
    user_id: int | None = None


def _user(row: asyncpg.Record) -> UserRecord:
    return UserRecord(
        id=row["id"],
        username=row["username"],
        password_hash=row["password_hash"],
        roles=tuple(row["roles"]),
        created_at=row["created_at"],
    )


def _key(row: asyncpg.Record) -> KeyRecord:
    return KeyRecord(
        kid=row["kid"],
        public_jwk=row["public_jwk"],
        private_key_encrypted=row["private_key_encrypted"],
        activates_at=row["activates_at"],
        expires_at=row["expires_at"],
    )


_USER_COLUMNS = "id, username, password_hash, roles, created_at"


class AuthRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # --- users -------------------------------------------------------------------------------

    async def insert_user(
        self, *, username: str, password_hash: str, roles: list[str]
    ) -> UserRecord | None:
        """The new user, or None when the name is taken."""
        row = await self.pool.fetchrow(
            f"""INSERT INTO user_account (username, password_hash, roles)
                VALUES ($1, $2, $3)
                ON CONFLICT ON CONSTRAINT user_account_username_uq DO NOTHING
                RETURNING {_USER_COLUMNS}""",  # noqa: S608 (a constant column list)
            username,
            password_hash,
            roles,
        )
        return _user(row) if row else None

    async def user_by_name(self, *, username: str) -> UserRecord | None:
        row = await self.pool.fetchrow(
            f"SELECT {_USER_COLUMNS} FROM user_account WHERE username = $1",  # noqa: S608
            username,
        )
        return _user(row) if row else None

    async def user_by_id(self, *, user_id: int) -> UserRecord | None:
        row = await self.pool.fetchrow(
            f"SELECT {_USER_COLUMNS} FROM user_account WHERE id = $1",  # noqa: S608
            user_id,
        )
        return _user(row) if row else None

    async def update_password_hash(self, *, user_id: int, password_hash: str) -> None:
        await self.pool.execute(
            "UPDATE user_account SET password_hash = $2 WHERE id = $1", user_id, password_hash
        )

    async def count_users(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM user_account"))

    # --- logins and refresh tokens -----------------------------------------------------------

    async def start_login(
        self, *, session_id: uuid.UUID, user_id: int, token_hash: bytes, ttl_seconds: int
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO login_session (id, user_id, expires_at)
                   VALUES ($1, $2, now() + make_interval(secs => $3))""",
                session_id,
                user_id,
                ttl_seconds,
            )
            await _insert_refresh_token(conn, session_id, token_hash, ttl_seconds)

    async def rotate_refresh_token(
        self, *, token_hash: bytes, new_token_hash: bytes, ttl_seconds: int
    ) -> RefreshResult:
        """Exchange a refresh token for a new one of the same login.

        The row lock makes concurrent presentations of one token take turns: the first rotates,
        the second finds it used — reuse, which revokes the login (a stolen token raced its
        owner, and nobody can tell which side is which).
        """
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT rt.session_id, rt.used_at, rt.expires_at <= now() AS expired,
                          s.revoked_at, s.user_id
                   FROM refresh_token rt JOIN login_session s ON s.id = rt.session_id
                   WHERE rt.token_hash = $1
                   FOR UPDATE""",
                token_hash,
            )
            if row is None:
                return RefreshResult(RefreshOutcome.UNKNOWN)
            session_id, user_id = row["session_id"], row["user_id"]
            if row["revoked_at"] is not None:
                return RefreshResult(RefreshOutcome.REVOKED, session_id, user_id)
            if row["used_at"] is not None:
                await _revoke(conn, session_id, "refresh token reuse")
                return RefreshResult(RefreshOutcome.REUSED, session_id, user_id)
            if row["expired"]:
                return RefreshResult(RefreshOutcome.EXPIRED, session_id, user_id)
            await conn.execute(
                "UPDATE refresh_token SET used_at = now() WHERE token_hash = $1", token_hash
            )
            await _insert_refresh_token(conn, session_id, new_token_hash, ttl_seconds)
            await conn.execute(
                """UPDATE login_session
                   SET expires_at = greatest(expires_at, now() + make_interval(secs => $2))
                   WHERE id = $1""",
                session_id,
                ttl_seconds,
            )
            return RefreshResult(RefreshOutcome.ROTATED, session_id, user_id)

    async def session_of_refresh_token(self, *, token_hash: bytes) -> uuid.UUID | None:
        value = await self.pool.fetchval(
            "SELECT session_id FROM refresh_token WHERE token_hash = $1", token_hash
        )
        return value if isinstance(value, uuid.UUID) else None

    async def revoke_session(self, *, session_id: uuid.UUID, reason: str) -> bool:
        """Mark the login revoked (its refresh tokens stop working); False if it is unknown."""
        async with self.pool.acquire() as conn:
            return await _revoke(conn, session_id, reason)

    async def session_state(self, *, session_id: uuid.UUID) -> str | None:
        """'active', 'revoked', or None when there is no such login."""
        row = await self.pool.fetchrow(
            "SELECT revoked_at FROM login_session WHERE id = $1", session_id
        )
        if row is None:
            return None
        return "active" if row["revoked_at"] is None else "revoked"

    async def count_refresh_tokens(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM refresh_token"))

    # --- signing keys ------------------------------------------------------------------------

    async def published_keys(self) -> PublishedKeys:
        async with self.pool.acquire() as conn, conn.transaction():
            db_now = await conn.fetchval("SELECT now()")
            rows = await conn.fetch(
                """SELECT kid, public_jwk, private_key_encrypted, activates_at, expires_at
                   FROM signing_key
                   WHERE expires_at IS NULL OR expires_at > now()
                   ORDER BY activates_at DESC, created_at DESC"""
            )
        return PublishedKeys(keys=[_key(row) for row in rows], db_now=db_now)

    async def has_newest_key(self) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM signing_key WHERE expires_at IS NULL)"
            )
        )

    async def add_first_key(
        self, *, kid: str, public_jwk: dict[str, Any], private_key_encrypted: bytes
    ) -> bool:
        """Add a key that signs at once, unless a current key exists; True if added."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _SIGNING_KEY_LOCK)
            if await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM signing_key WHERE expires_at IS NULL)"
            ):
                return False
            await _insert_key(conn, kid, public_jwk, private_key_encrypted, delay_seconds=0)
            return True

    async def rotate_key(
        self,
        *,
        kid: str,
        public_jwk: dict[str, Any],
        private_key_encrypted: bytes,
        activation_delay_seconds: int,
        publish_after_retire_seconds: int,
    ) -> None:
        """Add a key that signs after the delay; the current key is published until
        `publish_after_retire_seconds` after that."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _SIGNING_KEY_LOCK)
            await conn.execute(
                """UPDATE signing_key SET expires_at = now() + make_interval(secs => $1)
                   WHERE expires_at IS NULL""",
                activation_delay_seconds + publish_after_retire_seconds,
            )
            await _insert_key(
                conn, kid, public_jwk, private_key_encrypted, delay_seconds=activation_delay_seconds
            )

    # --- housekeeping ------------------------------------------------------------------------

    async def delete_expired(self) -> dict[str, int]:
        """Drop what can no longer be used: ended logins (their tokens go with them), and keys
        no longer published."""
        async with self.pool.acquire() as conn, conn.transaction():
            sessions = await conn.execute("DELETE FROM login_session WHERE expires_at < now()")
            tokens = await conn.execute("DELETE FROM refresh_token WHERE expires_at < now()")
            keys = await conn.execute("DELETE FROM signing_key WHERE expires_at < now()")
        return {
            "sessions": _affected(sessions),
            "refresh_tokens": _affected(tokens),
            "keys": _affected(keys),
        }


async def _insert_refresh_token(
    conn: _Conn, session_id: uuid.UUID, token_hash: bytes, ttl_seconds: int
) -> None:
    await conn.execute(
        """INSERT INTO refresh_token (token_hash, session_id, expires_at)
           VALUES ($1, $2, now() + make_interval(secs => $3))""",
        token_hash,
        session_id,
        ttl_seconds,
    )


async def _revoke(conn: _Conn, session_id: uuid.UUID, reason: str) -> bool:
    status = await conn.execute(
        """UPDATE login_session SET revoked_at = coalesce(revoked_at, now()),
                  revoked_reason = coalesce(revoked_reason, $2)
           WHERE id = $1""",
        session_id,
        reason,
    )
    return _affected(status) > 0


async def _insert_key(
    conn: _Conn,
    kid: str,
    public_jwk: dict[str, Any],
    private_key_encrypted: bytes,
    *,
    delay_seconds: int,
) -> None:
    await conn.execute(
        """INSERT INTO signing_key (kid, public_jwk, private_key_encrypted, activates_at)
           VALUES ($1, $2, $3, now() + make_interval(secs => $4))""",
        kid,
        public_jwk,
        private_key_encrypted,
        delay_seconds,
    )


def _affected(status: str) -> int:
    """The row count of an asyncpg command status ("DELETE 3")."""
    return int(status.rsplit(" ", 1)[-1])
