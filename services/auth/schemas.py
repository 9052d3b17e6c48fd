"""Request and response bodies of the auth API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

USERNAME_PATTERN = r"^[a-z0-9_.-]{3,32}$"
PASSWORD_MIN, PASSWORD_MAX = 8, 128

Username = Annotated[
    str,
    StringConstraints(min_length=3, max_length=32, pattern=USERNAME_PATTERN),
    Field(description="3–32 characters of a-z, 0-9, `_`, `.`, `-`", examples=["alice"]),
]
Password = Annotated[
    str,
    StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX),
    Field(description="8–128 characters"),
]


class _Strict(BaseModel):
    # A number where a string belongs is a client bug worth reporting, not coercing.
    model_config = ConfigDict(extra="forbid", strict=True)


class UserCreate(_Strict):
    username: Username
    password: Password


class UserCreated(BaseModel):
    id: int
    username: str
    created_at: datetime


class Me(BaseModel):
    id: int
    username: str
    roles: list[str]
    created_at: datetime


class TokenRequest(BaseModel):
    """The form of POST /auth/token. Every field is optional here: which ones a grant needs is
    checked by the endpoint, which answers OAuth-style 400s rather than 422s."""

    grant_type: str | None = Field(default=None, examples=["password"])
    username: str | None = Field(default=None, description="grant_type=password")
    password: str | None = Field(default=None, description="grant_type=password")
    refresh_token: str | None = Field(default=None, description="grant_type=refresh_token")


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a token type, not a secret)
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str


class RevokeRequest(_Strict):
    token: Annotated[str, StringConstraints(min_length=1, max_length=8192)] = Field(
        description="A refresh token or an access token of the login to end"
    )
    # RFC 7009 lets clients say which kind they send; either kind is found without it.
    token_type_hint: Literal["refresh_token", "access_token"] | None = None


class Revoked(BaseModel):
    revoked: bool = Field(
        description="Always true: RFC 7009 answers the same whether the token was known or not"
    )


class Jwk(BaseModel):
    model_config = ConfigDict(extra="allow")

    kid: str
    kty: str
    crv: str
    x: str
    alg: str
    use: str


class JwkSet(BaseModel):
    keys: list[Jwk]
