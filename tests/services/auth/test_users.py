"""POST /auth/users: accounts are created with valid names and passwords, and only then."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import asyncpg
import httpx2
import pytest
from argon2 import PasswordHasher

from tests.services.auth.conftest import (
    assert_problem,
    login,
    me,
    new_username,
    register,
    tokens_for,
)


async def test_register_creates_a_user_who_can_log_in(
    client: httpx2.AsyncClient, db: asyncpg.Connection
) -> None:
    username = new_username("alice")
    created = await register(client, username, "s3cret passphrase")

    assert created["username"] == username
    assert isinstance(created["id"], int)
    assert datetime.fromisoformat(created["created_at"]).utcoffset() is not None
    stored = await db.fetchval(
        "SELECT password_hash FROM user_account WHERE username = $1", username
    )
    assert stored.startswith("$argon2id$")
    assert "s3cret passphrase" not in stored

    tokens = await tokens_for(client, username, "s3cret passphrase")
    profile = (await me(client, tokens["access_token"])).json()
    assert profile["id"] == created["id"]
    assert profile["username"] == username
    assert profile["roles"] == []
    assert profile["created_at"] == created["created_at"]


@pytest.mark.parametrize(
    "password",
    ["12345678", "x" * 128, "пароль-パスワード", "  spaces  "],
    ids=["8 chars", "128 chars", "unicode", "spaces kept"],
)
async def test_passwords_at_the_limits_are_accepted(
    client: httpx2.AsyncClient, password: str
) -> None:
    username = new_username()
    await register(client, username, password)
    assert (await login(client, username, password)).status_code == 200


async def test_usernames_at_the_limits_are_accepted(client: httpx2.AsyncClient) -> None:
    suffix = new_username("")[-6:]
    for username in (f"a{suffix[:2]}", f"{'x' * 26}{suffix}", f"a.b_c-{suffix}"):
        created = await register(client, username)
        assert created["username"] == username


async def test_a_taken_username_is_refused_with_409(
    client: httpx2.AsyncClient, db: asyncpg.Connection
) -> None:
    username = new_username()
    await register(client, username, "first password")
    response = await client.post(
        "/auth/users", json={"username": username, "password": "second password"}
    )
    assert_problem(response, 409)
    assert await db.fetchval("SELECT count(*) FROM user_account WHERE username = $1", username) == 1
    # The first account is untouched.
    assert (await login(client, username, "first password")).status_code == 200


async def test_concurrent_registrations_of_one_name_create_one_user(
    client: httpx2.AsyncClient, db: asyncpg.Connection
) -> None:
    username = new_username()
    responses = await asyncio.gather(
        *(
            client.post("/auth/users", json={"username": username, "password": f"password-{i}"})
            for i in range(5)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    assert await db.fetchval("SELECT count(*) FROM user_account WHERE username = $1", username) == 1


BAD_BODIES: list[tuple[str, Any]] = [
    ("username too short", {"username": "ab", "password": "long enough"}),
    ("username too long", {"username": "a" * 33, "password": "long enough"}),
    ("username upper case", {"username": "Alice", "password": "long enough"}),
    ("username with space", {"username": "al ice", "password": "long enough"}),
    ("username non-ascii", {"username": "zoë-user", "password": "long enough"}),
    ("username with slash", {"username": "a/b/c", "password": "long enough"}),
    ("password too short", {"username": "shortpw", "password": "1234567"}),
    ("password too long", {"username": "longpw", "password": "x" * 129}),
    ("username a number", {"username": 12345, "password": "long enough"}),
    ("password a number", {"username": "numpw", "password": 123456789}),
    ("password null", {"username": "nullpw", "password": None}),
    ("username missing", {"password": "long enough"}),
    ("password missing", {"username": "nopw"}),
    ("empty object", {}),
    ("extra field", {"username": "extra", "password": "long enough", "roles": ["admin"]}),
    ("a list", [{"username": "listed", "password": "long enough"}]),
    ("a string", "username=alice"),
]


@pytest.mark.parametrize(("case", "body"), BAD_BODIES, ids=[case for case, _ in BAD_BODIES])
async def test_bad_bodies_get_422_and_store_nothing(
    client: httpx2.AsyncClient, db: asyncpg.Connection, case: str, body: Any
) -> None:
    before = await db.fetchval("SELECT count(*) FROM user_account")
    problem = assert_problem(await client.post("/auth/users", json=body), 422)
    assert problem["errors"]
    assert await db.fetchval("SELECT count(*) FROM user_account") == before


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"username": "broken", "password": ', "application/json", 422),
        (b"\xff\xfe not utf-8", "application/json", 422),
        (b'{"username": "\xe9t\xe9", "password": "long enough"}', "application/json", 422),
        (b"", "application/json", 422),
        (b'{"username": "texty", "password": "long enough"}', "text/plain", 415),
        (b"username=formy&password=long+enough", "application/x-www-form-urlencoded", 415),
        (b'{"username": "nocontenttype", "password": "long enough"}', None, 415),
    ],
    ids=[
        "truncated JSON",
        "not UTF-8",
        "latin-1",
        "empty body",
        "text/plain",
        "form",
        "no content type",
    ],
)
async def test_malformed_requests_get_4xx_and_store_nothing(
    client: httpx2.AsyncClient,
    db: asyncpg.Connection,
    content: bytes,
    content_type: str | None,
    status: int,
) -> None:
    before = await db.fetchval("SELECT count(*) FROM user_account")
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/auth/users", content=content, headers=headers)
    assert_problem(response, status)
    assert await db.fetchval("SELECT count(*) FROM user_account") == before


async def test_openapi_documents_every_endpoint_and_its_errors(
    client: httpx2.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        ("/auth/users", "post"): {"201", "409", "415", "422"},
        ("/auth/token", "post"): {"200", "400", "401", "415", "429"},
        ("/auth/revoke", "post"): {"200", "415", "422"},
        ("/auth/me", "get"): {"200", "401"},
        ("/auth/.well-known/jwks.json", "get"): {"200"},
    }
    for (path, method), statuses in expected.items():
        responses = paths[path][method]["responses"]
        assert statuses <= set(responses), (path, method, set(responses))
    token_body = paths["/auth/token"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in token_body


async def test_a_hash_with_outdated_parameters_is_redone_at_login(
    client: httpx2.AsyncClient, db: asyncpg.Connection
) -> None:
    username = new_username()
    await register(client, username, "upgrade me please")
    old_hash = PasswordHasher(time_cost=2, memory_cost=16, parallelism=2).hash("upgrade me please")
    await db.execute(
        "UPDATE user_account SET password_hash = $2 WHERE username = $1", username, old_hash
    )

    assert (await login(client, username, "upgrade me please")).status_code == 200
    new_hash = await db.fetchval(
        "SELECT password_hash FROM user_account WHERE username = $1", username
    )
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert (await login(client, username, "upgrade me please")).status_code == 200
