"""POST /auth/token, /auth/revoke and GET /auth/me: logins, refresh-token rotation, reuse detection,
logout, and the access tokens they hand out."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import asyncpg
import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey
from redis.asyncio import Redis

from services.auth.keys import KeyRing, key_box
from services.auth.repository import AuthRepository
from services.auth.tokens import hash_refresh_token, sign_access_token
from shared.db import create_pool
from shared.http_client import create_http_client
from shared.jwks import JwksVerifier, revoked_session_key
from tests.services.auth.conftest import (
    AuthServer,
    assert_problem,
    login,
    me,
    new_username,
    refresh,
    register,
    tokens_for,
)

PASSWORD = "correct horse battery"


async def _user_tokens(client: httpx2.AsyncClient) -> tuple[str, dict[str, str]]:
    username = new_username()
    await register(client, username, PASSWORD)
    return username, await tokens_for(client, username, PASSWORD)


async def test_login_answers_an_oauth_token_response(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    username = new_username()
    user = await register(client, username, PASSWORD)
    response = await login(client, username, PASSWORD)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == auth_server.settings.access_token_ttl_seconds
    assert len(body["refresh_token"]) >= 43

    # The access token is what every other service verifies: check it as they do, over the JWKS.
    keys = KeySet.import_key_set((await client.get("/auth/.well-known/jwks.json")).json())
    token = jwt.decode(body["access_token"], keys, algorithms=["Ed25519"])
    assert token.header["alg"] == "Ed25519"
    assert token.header["kid"] in {key.kid for key in keys.keys}
    claims = token.claims
    assert claims["iss"] == "tinkerstack"
    assert claims["aud"] == "tinkerstack"
    assert claims["sub"] == str(user["id"])
    assert claims["name"] == username
    assert claims["roles"] == []
    assert claims["exp"] - claims["iat"] == auth_server.settings.access_token_ttl_seconds
    assert abs(claims["iat"] - time.time()) < 60
    uuid.UUID(claims["sid"])
    assert claims["jti"]


async def test_shared_verifier_accepts_tokens_over_the_jwks_url(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    username, tokens = await _user_tokens(client)
    http = create_http_client()
    try:
        verifier = JwksVerifier(
            jwks_url=auth_server.jwks_url, issuer="tinkerstack", audience="tinkerstack", http=http
        )
        principal = await verifier.verify(tokens["access_token"])
    finally:
        await http.aclose()
    assert principal.username == username
    assert principal.session_id is not None


async def test_two_logins_are_two_sessions(client: httpx2.AsyncClient) -> None:
    username, first = await _user_tokens(client)
    second = await tokens_for(client, username, PASSWORD)
    assert _claims(first["access_token"])["sid"] != _claims(second["access_token"])["sid"]
    assert first["refresh_token"] != second["refresh_token"]


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("known", "wrong password"),
        ("nobody-by-this-name", PASSWORD),
        ("known", ""),
        ("", PASSWORD),
        ("known", "x" * 5000),
        ("NOT A VALID NAME", PASSWORD),
    ],
    ids=["wrong password", "unknown user", "empty password", "empty name", "huge", "bad name"],
)
async def test_wrong_credentials_get_401_or_400(
    client: httpx2.AsyncClient, db: asyncpg.Connection, username: str, password: str
) -> None:
    real = new_username()
    await register(client, real, PASSWORD)
    username = real if username == "known" else username
    sessions_before = await db.fetchval("SELECT count(*) FROM login_session")
    response = await login(client, username, password)
    if not username or not password:
        assert assert_problem(response, 400)["error"] == "invalid_request"
    else:
        problem = assert_problem(response, 401)
        assert problem["error"] == "invalid_grant"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert "access_token" not in response.text
    assert await db.fetchval("SELECT count(*) FROM login_session") == sessions_before


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": ""}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "someone"}, "invalid_request"),
        ({"grant_type": "password", "password": "something"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
    ],
    ids=[
        "nothing",
        "empty grant",
        "client credentials",
        "authorization code",
        "no password",
        "no username",
        "no refresh token",
    ],
)
async def test_malformed_token_requests_get_400(
    client: httpx2.AsyncClient, db: asyncpg.Connection, data: dict[str, str], error: str
) -> None:
    before = await db.fetchval("SELECT count(*) FROM refresh_token")
    problem = assert_problem(await client.post("/auth/token", data=data), 400)
    assert problem["error"] == error
    assert await db.fetchval("SELECT count(*) FROM refresh_token") == before


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"grant_type": "password", "username": "a", "password": "b"}', "application/json"),
        (b"grant_type=password", "text/plain"),
        (b"grant_type=password", None),
    ],
    ids=["json", "text", "no content type"],
)
async def test_token_requests_that_are_not_form_encoded_get_415(
    client: httpx2.AsyncClient, content: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/auth/token", content=content, headers=headers)
    assert_problem(response, 415)


async def test_refresh_rotates_the_pair(client: httpx2.AsyncClient) -> None:
    username, first = await _user_tokens(client)
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()

    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    # Same login, same user.
    assert _claims(second["access_token"])["sid"] == _claims(first["access_token"])["sid"]
    assert (await me(client, second["access_token"])).json()["username"] == username
    # The new refresh token works in turn.
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200


async def test_reusing_a_refresh_token_revokes_the_whole_login(
    client: httpx2.AsyncClient, auth_server: AuthServer, redis: Redis, db: asyncpg.Connection
) -> None:
    _, first = await _user_tokens(client)
    second = (await refresh(client, first["refresh_token"])).json()
    assert (await me(client, second["access_token"])).status_code == 200

    reuse = await refresh(client, first["refresh_token"])
    assert assert_problem(reuse, 401)["error"] == "invalid_grant"
    assert "already used" in reuse.json()["detail"]

    # Everything of that login is dead: the newest refresh token and every access token.
    assert_problem(await refresh(client, second["refresh_token"]), 401)
    assert_problem(await me(client, second["access_token"]), 401)
    assert_problem(await me(client, first["access_token"]), 401)

    sid = _claims(first["access_token"])["sid"]
    ttl = await redis.ttl(revoked_session_key(auth_server.settings.namespace, sid))
    assert auth_server.settings.access_token_ttl_seconds <= ttl
    assert ttl <= auth_server.settings.access_token_ttl_seconds + 60
    reason = await db.fetchval(
        "SELECT revoked_reason FROM login_session WHERE id = $1", uuid.UUID(sid)
    )
    assert reason == "refresh token reuse"


async def test_other_logins_survive_a_reuse(client: httpx2.AsyncClient) -> None:
    username, stolen = await _user_tokens(client)
    other = await tokens_for(client, username, PASSWORD)
    await refresh(client, stolen["refresh_token"])
    assert_problem(await refresh(client, stolen["refresh_token"]), 401)
    assert (await me(client, other["access_token"])).status_code == 200
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_with_one_token_let_at_most_one_through(
    client: httpx2.AsyncClient,
) -> None:
    _, tokens = await _user_tokens(client)
    responses = await asyncio.gather(*(refresh(client, tokens["refresh_token"]) for _ in range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401, 401, 401, 401]
    # The racing duplicates count as reuse: the one pair handed out is revoked too.
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert_problem(await refresh(client, winner["refresh_token"]), 401)


async def test_unknown_and_expired_refresh_tokens_get_401(
    client: httpx2.AsyncClient, db: asyncpg.Connection
) -> None:
    assert_problem(await refresh(client, "not-a-token-we-issued"), 401)
    assert_problem(await refresh(client, "x" * 10_000), 401)

    _, tokens = await _user_tokens(client)
    await db.execute(
        "UPDATE refresh_token SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        hash_refresh_token(tokens["refresh_token"]),
    )
    problem = assert_problem(await refresh(client, tokens["refresh_token"]), 401)
    assert "expired" in problem["detail"]


async def test_only_hashes_of_refresh_tokens_are_stored(
    client: httpx2.AsyncClient, db: asyncpg.Connection
) -> None:
    _, tokens = await _user_tokens(client)
    rows = await db.fetch("SELECT token_hash FROM refresh_token")
    stored = {bytes(row["token_hash"]) for row in rows}
    assert hash_refresh_token(tokens["refresh_token"]) in stored
    assert not any(tokens["refresh_token"].encode() in value for value in stored)


# --- revoke ------------------------------------------------------------------------------------


async def test_revoking_a_refresh_token_ends_the_login(client: httpx2.AsyncClient) -> None:
    _, tokens = await _user_tokens(client)
    response = await client.post("/auth/revoke", json={"token": tokens["refresh_token"]})
    assert response.status_code == 200
    assert response.json() == {"revoked": True}
    assert_problem(await refresh(client, tokens["refresh_token"]), 401)
    assert_problem(await me(client, tokens["access_token"]), 401)


async def test_revoking_an_access_token_ends_the_login(client: httpx2.AsyncClient) -> None:
    _, tokens = await _user_tokens(client)
    response = await client.post("/auth/revoke", json={"token": tokens["access_token"]})
    assert response.status_code == 200
    assert_problem(await me(client, tokens["access_token"]), 401)
    assert_problem(await refresh(client, tokens["refresh_token"]), 401)


async def test_revoke_accepts_the_rfc_7009_type_hint(client: httpx2.AsyncClient) -> None:
    _, tokens = await _user_tokens(client)
    body = {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    assert (await client.post("/auth/revoke", json=body)).status_code == 200
    assert_problem(await refresh(client, tokens["refresh_token"]), 401)
    bad_hint = {"token": "whatever", "token_type_hint": "id_token"}
    assert_problem(await client.post("/auth/revoke", json=bad_hint), 422)


async def test_revoking_twice_or_an_unknown_token_is_still_200(client: httpx2.AsyncClient) -> None:
    _, tokens = await _user_tokens(client)
    for token in (tokens["refresh_token"], tokens["refresh_token"], "never-issued", "a.b.c"):
        assert (await client.post("/auth/revoke", json={"token": token})).status_code == 200


async def test_a_forged_access_token_revokes_nothing(client: httpx2.AsyncClient) -> None:
    _, tokens = await _user_tokens(client)
    victim_sid = _claims(tokens["access_token"])["sid"]
    forger = OKPKey.generate_key(
        "Ed25519", parameters={"kid": _header(tokens["access_token"])["kid"]}
    )
    forged = jwt.encode(
        {"alg": "Ed25519", "kid": forger.kid}, {"sid": victim_sid}, forger, algorithms=["Ed25519"]
    )
    assert (await client.post("/auth/revoke", json={"token": forged})).status_code == 200
    assert (await me(client, tokens["access_token"])).status_code == 200
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{}", "application/json", 422),
        (b'{"token": ""}', "application/json", 422),
        (b'{"token": 42}', "application/json", 422),
        (b'{"token": null}', "application/json", 422),
        (b'{"token": ["a"]}', "application/json", 422),
        (b'{"token": "x", "extra": 1}', "application/json", 422),
        (b'{"token": ', "application/json", 422),
        (b'{"token": "\xff"}', "application/json", 422),
        (b"token=abc", "application/x-www-form-urlencoded", 415),
        (b'{"token": "abc"}', "text/plain", 415),
    ],
    ids=[
        "empty",
        "empty token",
        "number",
        "null",
        "list",
        "extra",
        "broken",
        "not UTF-8",
        "form",
        "text",
    ],
)
async def test_malformed_revoke_requests_get_4xx(
    client: httpx2.AsyncClient,
    db: asyncpg.Connection,
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    revoked_before = await db.fetchval(
        "SELECT count(*) FROM login_session WHERE revoked_at IS NOT NULL"
    )
    response = await client.post(
        "/auth/revoke", content=content, headers={"Content-Type": content_type}
    )
    assert_problem(response, status)
    revoked_after = await db.fetchval(
        "SELECT count(*) FROM login_session WHERE revoked_at IS NOT NULL"
    )
    assert revoked_after == revoked_before


# --- /me with bad tokens -----------------------------------------------------------------------


async def _signed(
    auth_server: AuthServer, user: dict[str, object], *, ttl: int, **overrides: str
) -> str:
    """A token signed with the service's real current key (read from the database), for the
    cases the API never hands out (expired, foreign audience)."""
    settings = auth_server.settings
    pool = await create_pool(auth_server.stores.database_url, schema="auth", max_size=1)
    try:
        keys = KeyRing(AuthRepository(pool), key_box(settings), reload_seconds=60)
        key = await keys.signing_key()
    finally:
        await pool.close()
    token = sign_access_token(
        key,
        issuer=overrides.get("iss", settings.jwt_issuer),
        audience=overrides.get("aud", settings.jwt_audience),
        user_id=int(str(user["id"])),
        username=str(user["username"]),
        roles=(),
        session_id=uuid.uuid4(),
        ttl_seconds=ttl,
    )
    return token


async def test_me_rejects_missing_and_malformed_tokens(client: httpx2.AsyncClient) -> None:
    assert_problem(await client.get("/auth/me"), 401)
    response = await client.get("/auth/me", headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert_problem(response, 401)
    for token in ("garbage", "a.b.c", "x" * 5000):
        response = await me(client, token)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_me_rejects_tampered_tokens(client: httpx2.AsyncClient) -> None:
    _, tokens = await _user_tokens(client)
    header, payload, signature = tokens["access_token"].split(".")
    claims = _claims(tokens["access_token"])
    claims["roles"] = ["admin"]
    forged_payload = _b64(json.dumps(claims).encode())
    assert_problem(await me(client, f"{header}.{forged_payload}.{signature}"), 401)
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert_problem(await me(client, f"{header}.{payload}.{flipped}"), 401)
    none_header = _b64(
        json.dumps({"alg": "none", "kid": _header(tokens["access_token"])["kid"]}).encode()
    )
    assert_problem(await me(client, f"{none_header}.{payload}."), 401)


async def test_me_rejects_expired_and_foreign_audience_tokens(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    user = await register(client)
    # The control: the same recipe with sane claims is accepted.
    valid = await _signed(auth_server, user, ttl=300)
    assert (await me(client, valid)).json()["username"] == user["username"]

    expired = await _signed(auth_server, user, ttl=-120)
    assert "expired" in assert_problem(await me(client, expired), 401)["detail"].lower()
    foreign = await _signed(auth_server, user, ttl=300, aud="someone-else")
    assert_problem(await me(client, foreign), 401)
    other_issuer = await _signed(auth_server, user, ttl=300, iss="evil")
    assert_problem(await me(client, other_issuer), 401)


async def test_me_accepts_the_access_token_cookie(client: httpx2.AsyncClient) -> None:
    username, tokens = await _user_tokens(client)
    response = await client.get(
        "/auth/me", headers={"Cookie": f"access_token={tokens['access_token']}"}
    )
    assert response.status_code == 200
    assert response.json()["username"] == username


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _part(token: str, index: int) -> dict[str, object]:
    segment = token.split(".")[index]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def _claims(token: str) -> dict[str, object]:
    return _part(token, 1)


def _header(token: str) -> dict[str, object]:
    return _part(token, 0)


async def test_housekeeping_deletes_ended_logins_and_their_tokens(
    client: httpx2.AsyncClient, auth_server: AuthServer, db: asyncpg.Connection
) -> None:
    _, ended = await _user_tokens(client)
    _, live = await _user_tokens(client)
    ended_sid = uuid.UUID(str(_claims(ended["access_token"])["sid"]))
    await db.execute(
        """UPDATE login_session SET expires_at = now() - interval '1 second' WHERE id = $1""",
        ended_sid,
    )
    await db.execute(
        "UPDATE refresh_token SET expires_at = now() - interval '1 second' WHERE session_id = $1",
        ended_sid,
    )
    pool = await create_pool(auth_server.stores.database_url, schema="auth", max_size=1)
    try:
        deleted = await AuthRepository(pool).delete_expired()
    finally:
        await pool.close()

    assert deleted["sessions"] >= 1
    assert await db.fetchval("SELECT count(*) FROM login_session WHERE id = $1", ended_sid) == 0
    assert (
        await db.fetchval(
            "SELECT count(*) FROM refresh_token WHERE token_hash = $1",
            hash_refresh_token(ended["refresh_token"]),
        )
        == 0
    )
    assert (await refresh(client, live["refresh_token"])).status_code == 200
