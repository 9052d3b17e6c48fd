"""Protected routes: a request without a valid, unrevoked token is answered 401 by the gateway
and never reaches the service."""

from __future__ import annotations

import base64
import json
import uuid

import httpx2
import pytest
from joserfc.jwk import OKPKey
from redis.asyncio import Redis

from shared.jwks import revoked_session_key
from tests.support.stores import Stores
from tests.support.tokens import TokenIssuer

PROBLEM = "application/problem+json"


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["admin"]
    return ".".join((header, b64(claims), signature))


def unsigned(issuer: TokenIssuer) -> str:
    good = issuer.issue()
    payload = good.split(".")[1]
    return ".".join((b64({"alg": "none", "kid": issuer.key.kid, "typ": "JWT"}), payload, ""))


async def assert_refused(client: httpx2.AsyncClient, path: str, token: str | None) -> None:
    marker = uuid.uuid4().hex
    headers = {"X-Request-ID": marker}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    # The service never saw it.
    last = (await client.get("/quotes/last-seen")).json()
    assert marker not in json.dumps(last)


@pytest.mark.parametrize("path", ["/chat/echo", "/compute/echo", "/auth/me"])
async def test_missing_token(client: httpx2.AsyncClient, path: str) -> None:
    await assert_refused(client, path, None)


async def test_bad_tokens(client: httpx2.AsyncClient, issuer: TokenIssuer) -> None:
    other_key = OKPKey.generate_key("Ed25519", parameters={"kid": issuer.key.kid})
    bad = {
        "tampered": tampered(issuer.issue()),
        "expired": issuer.issue(lifetime=-3600),
        "wrong audience": issuer.issue(aud="someone-else"),
        "wrong issuer": issuer.issue(iss="someone-else"),
        "alg none": unsigned(issuer),
        "signed by another key": issuer.issue(key=other_key),
        "garbage": "not.a.token",
        "empty-ish": "e30",
    }
    for name, token in bad.items():
        try:
            await assert_refused(client, "/chat/echo", token)
        except AssertionError as exc:
            raise AssertionError(f"{name} token was not refused") from exc


async def test_a_valid_token_passes_by_header_or_cookie(
    client: httpx2.AsyncClient, issuer: TokenIssuer
) -> None:
    token = issuer.issue(sub="cookie-user")
    by_header = await client.get("/chat/echo", headers={"Authorization": f"Bearer {token}"})
    assert by_header.status_code == 200
    # The service gets the token too (it checks the user itself).
    assert dict(by_header.json()["headers"])["authorization"] == f"Bearer {token}"
    by_cookie = await client.get(
        "/chat/echo", headers={"Cookie": f"theme=dark; access_token={token}"}
    )
    assert by_cookie.status_code == 200


async def test_public_routes_need_no_token(client: httpx2.AsyncClient) -> None:
    assert (await client.get("/quotes/search")).status_code == 200
    assert (await client.get("/quotes")).status_code == 200
    assert (await client.get("/chat/")).status_code == 200  # the chat page itself
    assert (await client.post("/auth/echo", content=b"{}")).status_code == 200


async def test_adding_quotes_needs_a_token(client: httpx2.AsyncClient, issuer: TokenIssuer) -> None:
    await_refused = await client.post("/quotes", json={"text": "x"})
    assert await_refused.status_code == 401
    assert (await client.post("/quotes/import", content=b"x\n%\n")).status_code == 401
    token = issuer.issue(sub="quote-adder")
    allowed = await client.post(
        "/quotes", json={"text": "x"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert allowed.status_code == 200


async def test_a_revoked_login_is_refused(
    client: httpx2.AsyncClient, issuer: TokenIssuer, stores: Stores
) -> None:
    session_id = uuid.uuid4().hex
    token = issuer.issue(sub="revoked-user", sid=session_id)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/chat/echo", headers=headers)).status_code == 200
    redis = Redis.from_url(stores.redis_url)
    try:
        await redis.set(revoked_session_key(stores.namespace, session_id), b"1", ex=300)
        response = await client.get("/chat/echo", headers=headers)
    finally:
        await redis.delete(revoked_session_key(stores.namespace, session_id))
        await redis.aclose()
    assert response.status_code == 401
    assert response.json()["detail"] == "The token was revoked"
