from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import httpx2
import pytest
from joserfc.jwk import OKPKey

from shared.errors import ServiceUnavailable, Unauthorized
from shared.jwks import JwksVerifier
from tests.support.tokens import AUDIENCE, ISSUER, TokenIssuer, serve_token_issuer


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[TokenIssuer]:
    async with serve_token_issuer() as running:
        yield running


@pytest.fixture
async def verifier(issuer: TokenIssuer) -> AsyncIterator[JwksVerifier]:
    async with httpx2.AsyncClient() as http:
        yield JwksVerifier(
            jwks_url=issuer.jwks_url,
            issuer=ISSUER,
            audience=AUDIENCE,
            http=http,
            refetch_interval=0,
        )


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_a_valid_token_gives_its_principal(issuer: TokenIssuer, verifier: JwksVerifier):
    principal = await verifier.verify(issuer.issue(sub="42", name="bob", roles=("admin",)))
    assert (principal.user_id, principal.username, principal.roles) == ("42", "bob", ("admin",))
    assert principal.is_admin


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": 1}, "expired"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
    ],
)
async def test_tokens_with_bad_claims_are_refused(
    issuer: TokenIssuer, verifier: JwksVerifier, claims: dict[str, object], reason: str
) -> None:
    with pytest.raises(Unauthorized):
        await verifier.verify(issuer.issue(**claims))


@pytest.mark.parametrize(
    ("change", "value"), [("exp", None), ("sub", None), ("aud", None), ("roles", "admin")]
)
async def test_properly_signed_tokens_with_missing_or_odd_claims_are_refused(
    issuer: TokenIssuer, verifier: JwksVerifier, change: str, value: object
) -> None:
    claims = issuer.claims_of(issuer.issue())
    if value is None:
        del claims[change]
    else:
        claims[change] = value
    with pytest.raises(Unauthorized):
        await verifier.verify(issuer.sign(claims))


async def test_a_tampered_token_is_refused(issuer: TokenIssuer, verifier: JwksVerifier) -> None:
    header, payload, signature = issuer.issue(sub="1").split(".")
    forged = b64({**json.loads(base64.urlsafe_b64decode(payload + "==")), "sub": "2"})
    with pytest.raises(Unauthorized):
        await verifier.verify(f"{header}.{forged}.{signature}")


async def test_alg_none_is_refused(issuer: TokenIssuer, verifier: JwksVerifier) -> None:
    header = b64({"alg": "none", "kid": issuer.key.kid})
    payload = b64({"iss": ISSUER, "aud": AUDIENCE, "sub": "1", "exp": 2**40})
    with pytest.raises(Unauthorized):
        await verifier.verify(f"{header}.{payload}.")


async def test_a_key_outside_the_set_is_refused(issuer: TokenIssuer, verifier: JwksVerifier):
    stranger = OKPKey.generate_key("Ed25519", parameters={"kid": issuer.key.kid})
    with pytest.raises(Unauthorized):
        await verifier.verify(issuer.issue(key=stranger))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 5000, "Bearer abc.def.ghi"])
async def test_garbage_is_refused(verifier: JwksVerifier, garbage: str) -> None:
    with pytest.raises(Unauthorized):
        await verifier.verify(garbage)


async def test_a_rotated_key_is_fetched_on_first_sight(
    issuer: TokenIssuer, verifier: JwksVerifier
) -> None:
    await verifier.verify(issuer.issue())
    old_key = issuer.key
    issuer.key = OKPKey.generate_key("Ed25519", parameters={"kid": "rotated"})
    try:
        principal = await verifier.verify(issuer.issue(sub="7"))
    finally:
        issuer.key = old_key
    assert principal.user_id == "7"


async def test_an_unreachable_jwks_is_a_503_not_a_401() -> None:
    async with httpx2.AsyncClient() as http:
        verifier = JwksVerifier(
            jwks_url="http://127.0.0.1:9/jwks.json", issuer=ISSUER, audience=AUDIENCE, http=http
        )
        with pytest.raises(ServiceUnavailable):
            await verifier.verify(TokenIssuer().issue())
