"""Signing keys: the JWKS, rotation by the CLI picked up by the running service, old keys kept
published while their tokens live, one key made however many instances start, encryption at rest."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import httpx2
import pytest
from pydantic import SecretStr, ValidationError

from services.auth.__main__ import MIGRATIONS
from services.auth.config import AuthSettings
from services.auth.keys import KeyRing, ensure_signing_key, key_box
from services.auth.repository import AuthRepository
from services.auth.secretbox import SecretBox, SecretBoxError
from shared.db import create_pool
from shared.http_client import create_http_client
from shared.jwks import JwksVerifier
from shared.migrations import apply_migrations
from tests.services.auth.conftest import AuthServer, me, register, run_cli, tokens_for

T = TypeVar("T")
PASSWORD = "key rotation test"


async def poll(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], deadline_s: float = 10.0
) -> T:
    """Call `probe` until `done(result)`; fail after the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {deadline_s} s; last: {result!r}")
        await asyncio.sleep(0.05)


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


async def published_kids(client: httpx2.AsyncClient) -> set[str]:
    return {key["kid"] for key in (await client.get("/auth/.well-known/jwks.json")).json()["keys"]}


async def test_jwks_publishes_public_ed25519_keys(client: httpx2.AsyncClient) -> None:
    response = await client.get("/auth/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "OKP"
        assert key["crv"] == "Ed25519"
        assert key["alg"] == "Ed25519"
        assert key["use"] == "sig"
        assert key["kid"]
        assert len(base64.urlsafe_b64decode(key["x"] + "=")) == 32
        assert "d" not in key


async def test_rotation_publishes_both_keys_and_old_tokens_still_verify(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    username = (await register(client, password=PASSWORD))["username"]
    before = await tokens_for(client, username, PASSWORD)
    old_kid = kid_of(before["access_token"])

    result = await run_cli(auth_server.env, "rotate-key", "--activate-in", "0")
    assert result.returncode == 0, result.stderr
    new_kid = json.loads(result.stdout)["kid"]
    assert new_kid != old_kid

    # The running service rereads the keys by itself: no restart.
    kids = await poll(lambda: published_kids(client), lambda kids: new_kid in kids)
    assert {old_kid, new_kid} <= kids
    after = await poll(
        lambda: tokens_for(client, username, PASSWORD),
        lambda tokens: kid_of(tokens["access_token"]) == new_kid,
    )

    # Tokens of both keys verify: in auth itself, and in any service through the JWKS.
    assert (await me(client, before["access_token"])).status_code == 200
    assert (await me(client, after["access_token"])).status_code == 200
    http = create_http_client()
    try:
        verifier = JwksVerifier(
            jwks_url=auth_server.jwks_url, issuer="tinkerstack", audience="tinkerstack", http=http
        )
        for token in (before["access_token"], after["access_token"]):
            assert (await verifier.verify(token)).username == username
    finally:
        await http.aclose()
    # The refresh token of the old login still works and gets a new-key token.
    refreshed = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": before["refresh_token"]},
    )
    assert kid_of(refreshed.json()["access_token"]) == new_kid


async def test_a_rotated_in_key_is_published_before_it_signs(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    username = (await register(client, password=PASSWORD))["username"]
    signing_kid = kid_of((await tokens_for(client, username, PASSWORD))["access_token"])

    result = await run_cli(auth_server.env, "rotate-key", "--activate-in", "3600")
    assert result.returncode == 0, result.stderr
    upcoming = json.loads(result.stdout)["kid"]

    kids = await poll(lambda: published_kids(client), lambda kids: upcoming in kids)
    assert signing_kid in kids
    tokens = await tokens_for(client, username, PASSWORD)
    assert kid_of(tokens["access_token"]) == signing_kid


async def test_keys_leave_the_jwks_when_their_publication_ends(
    client: httpx2.AsyncClient, auth_server: AuthServer, db: asyncpg.Connection
) -> None:
    result = await run_cli(auth_server.env, "rotate-key", "--activate-in", "0")
    assert result.returncode == 0, result.stderr
    newest = json.loads(result.stdout)["kid"]
    await poll(lambda: published_kids(client), lambda kids: newest in kids)
    # Jump past the end of the publication window of every replaced key.
    await db.execute(
        "UPDATE signing_key SET expires_at = now() - interval '1 second' WHERE kid <> $1", newest
    )
    kids = await poll(lambda: published_kids(client), lambda kids: kids == {newest})
    assert kids == {newest}


async def test_first_start_makes_exactly_one_key_however_many_instances_race(
    auth_server: AuthServer,
) -> None:
    database_url = auth_server.stores.database_url
    await apply_migrations(database_url, schema="auth_race", directory=MIGRATIONS)
    pools = [
        await create_pool(database_url, schema="auth_race", min_size=1, max_size=1)
        for _ in range(6)
    ]
    try:
        box = key_box(auth_server.settings)
        made = await asyncio.gather(
            *(ensure_signing_key(AuthRepository(pool), box) for pool in pools)
        )
        assert made.count(True) == 1
        assert await pools[0].fetchval("SELECT count(*) FROM signing_key") == 1
        # Later starts find it.
        assert await ensure_signing_key(AuthRepository(pools[0]), box) is False
    finally:
        for pool in pools:
            await pool.close()


async def test_private_keys_are_encrypted_at_rest(
    auth_server: AuthServer, db: asyncpg.Connection
) -> None:
    rows = await db.fetch("SELECT public_jwk, private_key_encrypted FROM signing_key")
    assert rows
    box = key_box(auth_server.settings)
    wrong = SecretBox("another secret", purpose="signing-key")
    for row in rows:
        stored = bytes(row["private_key_encrypted"])
        assert b'"d"' not in stored
        private: dict[str, Any] = json.loads(box.decrypt(stored))
        assert private["x"] == json.loads(row["public_jwk"])["x"]
        assert private["d"]
        with pytest.raises(SecretBoxError):
            wrong.decrypt(stored)


async def test_keys_cannot_be_used_with_another_secret(auth_server: AuthServer) -> None:
    pool = await create_pool(auth_server.stores.database_url, schema="auth", max_size=1)
    try:
        wrong_secret = auth_server.settings.model_copy(
            update={"secret_key": SecretStr("not the secret the keys were stored with")}
        )
        ring = KeyRing(AuthRepository(pool), key_box(wrong_secret), reload_seconds=60)
        with pytest.raises(SecretBoxError, match="AUTH_SECRET_KEY"):
            await ring.reload()
    finally:
        await pool.close()


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="AUTH_SECRET_KEY must be set in production"):
        AuthSettings(environment="production")
    settings = AuthSettings(environment="production", secret_key=SecretStr("a real secret"))
    assert settings.argon2_memory_kib == 65_536  # argon2-cffi's default cost stays in production


def test_replaced_keys_must_outlive_their_tokens() -> None:
    with pytest.raises(ValidationError, match="AUTH_KEY_PUBLISH_AFTER_RETIRE_SECONDS"):
        AuthSettings(access_token_ttl_seconds=3600, key_publish_after_retire_seconds=600)


async def test_keys_in_hand_keep_working_when_the_database_is_gone(
    auth_server: AuthServer,
) -> None:
    pool = await create_pool(auth_server.stores.database_url, schema="auth", max_size=1)
    # Reread on every use, so each call below tries the database.
    ring = KeyRing(AuthRepository(pool), key_box(auth_server.settings), reload_seconds=0)
    signing = await ring.signing_key()
    published = await ring.jwks()
    await pool.close()

    assert (await ring.signing_key()).kid == signing.kid
    assert await ring.jwks() == published
