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

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from services.auth.keys import SigningKey
from shared.jwks import ALGORITHM


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
