"""Tokens: signed access tokens (JWT), opaque refresh tokens, and verification by auth itself.

Auth verifies its own access tokens (for `/auth/me`, `/auth/revoke`) against the key ring in
memory rather than over HTTP from its own JWKS endpoint: same keys, same checks, no round trip.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import Any

import httpx2
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from services.auth.keys import KeyRing, SigningKey
from shared.jwks import ALGORITHM, JwksVerifier


def new_refresh_token() -> tuple[str, bytes]:
    """A refresh token (256 random bits) and the hash that is stored instead of it."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def sign_access_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    user_id: int,
    username: str,
    roles: tuple[str, ...],
    session_id: uuid.UUID,
    ttl_seconds: int,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": str(user_id),
        "name": username,
        "roles": list(roles),
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "sid": str(session_id),
    }
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key.private, algorithms=[ALGORITHM])


def signed_session_id(token: str, keys: KeySet) -> uuid.UUID | None:
    """The `sid` of an access token this service signed (expired or not), else None.

    Used by revocation: a valid signature proves the caller holds a token of that login; its
    age does not matter for ending the login.
    """
    try:
        decoded = jwt.decode(token, keys, algorithms=[ALGORITHM])
        return uuid.UUID(str(decoded.claims["sid"]))
    except (JoseError, ValueError, TypeError, KeyError):
        return None


class KeyRingVerifier(JwksVerifier):
    """shared's verifier (pinned algorithm, the same claim checks) with the keys taken from the
    key ring in memory instead of fetched over HTTP. A token with an unknown `kid` (a key rotated
    in by another instance or the CLI) makes the ring reread the database, at most every
    `refetch_interval` seconds."""

    def __init__(
        self, keys: KeyRing, *, issuer: str, audience: str, http: httpx2.AsyncClient
    ) -> None:
        super().__init__(jwks_url="", issuer=issuer, audience=audience, http=http)
        self.keys = keys
        self._reloaded_at = 0.0

    async def _key_set(self, kid: str | None) -> KeySet:
        keys = await self.keys.public_key_set()
        if kid is None or any(key.kid == kid for key in keys.keys):
            return keys
        if time.monotonic() - self._reloaded_at < self.refetch_interval:
            return keys
        self._reloaded_at = time.monotonic()
        await self.keys.reload()
        return await self.keys.public_key_set()
