"""A token issuer for tests of services that *verify* tokens: an Ed25519 key of its own, its JWKS
served over real HTTP, and tokens signed with any claims a test needs (expired, wrong audience...).
Auth's own issuing is tested against the auth service itself."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from joserfc import jwt
from joserfc.jwk import OKPKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.servers import serve_in_process

ISSUER = "tinkerstack"
AUDIENCE = "tinkerstack"


class TokenIssuer:
    def __init__(self) -> None:
        self.key = OKPKey.generate_key("Ed25519", parameters={"kid": uuid.uuid4().hex[:12]})
        self.jwks_url = ""

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.as_dict(private=False), "alg": "Ed25519", "use": "sig"}]}

    def issue(
        self,
        *,
        sub: str = "1",
        name: str = "alice",
        roles: tuple[str, ...] = (),
        lifetime: int = 300,
        key: OKPKey | None = None,
        alg: str = "Ed25519",
        **overrides: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "name": name,
            "roles": list(roles),
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            "sid": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return self.sign(claims, key=key, alg=alg)

    def sign(
        self, claims: dict[str, Any], *, key: OKPKey | None = None, alg: str = "Ed25519"
    ) -> str:
        signing_key = key or self.key
        header = {"alg": alg, "kid": signing_key.kid}
        return jwt.encode(header, claims, signing_key, algorithms=[alg])

    def claims_of(self, token: str) -> dict[str, Any]:
        return dict(jwt.decode(token, self.key, algorithms=["Ed25519"]).claims)


@asynccontextmanager
async def serve_token_issuer() -> AsyncIterator[TokenIssuer]:
    issuer = TokenIssuer()

    async def jwks(request: Request) -> Response:
        return JSONResponse(issuer.jwks())

    async def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    app = Starlette(routes=[Route("/auth/.well-known/jwks.json", jwks), Route("/readyz", ready)])
    async with serve_in_process(app) as base_url:
        issuer.jwks_url = f"{base_url}/auth/.well-known/jwks.json"
        yield issuer
