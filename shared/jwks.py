"""Access-token verification against the auth service's JWKS.

The key set is fetched once and cached; a token signed with an unknown `kid` triggers one refetch
(keys rotate), at most every `refetch_interval` seconds, so a flood of made-up kids cannot turn
into a flood of JWKS requests. The algorithm is pinned (no `alg: none`, no HMAC with a public key)
and `iss`, `aud` and `exp` are required and checked.

A token whose login was revoked (logout, refresh-token reuse) stays cryptographically valid until
it expires; the auth service marks its session id (`sid`) in Redis under
`<ns>:auth:revoked-sid:<sid>` for the token lifetime, and `is_revoked` consults that key.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from joserfc.jwt import JWTClaimsRegistry
from redis.asyncio import Redis

from shared.errors import ServiceUnavailable, Unauthorized
from shared.redis_client import key

ALGORITHM = "Ed25519"


@dataclass(frozen=True)
class Principal:
    """Who a verified access token speaks for."""

    user_id: str
    username: str
    roles: tuple[str, ...]
    session_id: str | None
    token_id: str
    expires_at: int
    claims: dict[str, Any] = field(repr=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def revoked_session_key(namespace: str, session_id: str) -> str:
    return key(namespace, "auth", "revoked-sid", session_id)


class KeySource(Protocol):
    """Where a verifier gets its public keys. `kid` is the key id of the token at hand: a source
    that does not know it may look again (keys rotate)."""

    async def key_set(self, kid: str | None) -> KeySet: ...


class RemoteKeySet:
    """The JWKS of the auth service over HTTP: cached, refetched on an unknown `kid`."""

    def __init__(
        self, *, jwks_url: str, http: httpx2.AsyncClient, refetch_interval: float = 10.0
    ) -> None:
        self.jwks_url = jwks_url
        self.http = http
        self.refetch_interval = refetch_interval
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _fetch(self) -> KeySet:
        try:
            response = await self.http.get(self.jwks_url)
            response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
        except (httpx2.HTTPError, ValueError, JoseError) as exc:
            raise ServiceUnavailable("The token keys cannot be fetched") from exc
        self._keys, self._fetched_at = keys, time.monotonic()
        return keys

    async def key_set(self, kid: str | None) -> KeySet:
        keys = self._keys
        if keys is not None and has_kid(keys, kid):
            return keys
        async with self._lock:
            keys = self._keys
            stale = time.monotonic() - self._fetched_at >= self.refetch_interval
            if keys is None or (stale and not has_kid(keys, kid)):
                keys = await self._fetch()
        return keys


class TokenVerifier:
    def __init__(self, keys: KeySource, *, issuer: str, audience: str, leeway: int = 30) -> None:
        self.keys = keys
        self.registry = JWTClaimsRegistry(
            leeway=leeway,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
        )

    async def verify(self, token: str) -> Principal:
        try:
            kid = _unverified_kid(token)
            keys = await self.keys.key_set(kid)
            if not has_kid(keys, kid):
                raise Unauthorized("The token was signed with an unknown key")
            decoded = jwt.decode(token, keys, algorithms=[ALGORITHM])
            self.registry.validate(decoded.claims)
        except JoseError as exc:
            raise Unauthorized(f"The token is not valid: {exc.description or exc.error}") from exc
        except (ValueError, TypeError) as exc:
            raise Unauthorized("The token is not valid") from exc
        return _principal(decoded.claims)


class JwksVerifier(TokenVerifier):
    """A `TokenVerifier` over the auth service's JWKS URL: what every service but auth uses."""

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        http: httpx2.AsyncClient,
        refetch_interval: float = 10.0,
        leeway: int = 30,
    ) -> None:
        remote = RemoteKeySet(jwks_url=jwks_url, http=http, refetch_interval=refetch_interval)
        super().__init__(remote, issuer=issuer, audience=audience, leeway=leeway)


def _unverified_kid(token: str) -> str | None:
    header = extract_compact(token.encode("ascii")).protected
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


def has_kid(keys: KeySet, kid: str | None) -> bool:
    return kid is not None and any(k.kid == kid for k in keys.keys)


def _principal(claims: dict[str, Any]) -> Principal:
    roles = claims.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("The token is not valid: roles")
    return Principal(
        user_id=str(claims["sub"]),
        username=str(claims.get("name") or claims["sub"]),
        roles=tuple(roles),
        session_id=claims.get("sid"),
        token_id=str(claims.get("jti", "")),
        expires_at=int(claims["exp"]),
        claims=claims,
    )


async def is_revoked(redis: Redis, namespace: str, principal: Principal) -> bool:
    if principal.session_id is None:
        return False
    return bool(await redis.exists(revoked_session_key(namespace, principal.session_id)))
