"""The HTTP endpoints of `/auth`: parse, call the service layer, answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status

from services.auth.keys import KeyRing
from services.auth.schemas import (
    JwkSet,
    Me,
    Revoked,
    RevokeRequest,
    TokenPair,
    TokenRequest,
    UserCreate,
    UserCreated,
)
from services.auth.service import AuthService, IssuedTokens
from shared.deps import CurrentUser
from shared.errors import BadRequest, UnsupportedMediaType, problem_responses

router = APIRouter(prefix="/auth", tags=["auth"])


def _service(request: Request) -> AuthService:
    return request.state.auth  # type: ignore[no-any-return]


def _keys(request: Request) -> KeyRing:
    return request.state.keys  # type: ignore[no-any-return]


Auth = Annotated[AuthService, Depends(_service)]
Keys = Annotated[KeyRing, Depends(_keys)]


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_json(request: Request) -> None:
    media_type = _media_type(request)
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("The body must be application/json")


def require_form(request: Request) -> None:
    media_type = _media_type(request)
    # No body at all is an empty form (answered 400: grant_type is required), not a media type.
    empty = not media_type and request.headers.get("content-length", "0") == "0"
    if media_type != "application/x-www-form-urlencoded" and not empty:
        raise UnsupportedMediaType("The body must be application/x-www-form-urlencoded")


def client_ip(request: Request) -> str:
    # uvicorn's proxy_headers put the gateway's X-Forwarded-For client here.
    return request.client.host if request.client else "unknown"


class InvalidRequest(BadRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, error="invalid_request")


class UnsupportedGrantType(BadRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, error="unsupported_grant_type")


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_json)],
    responses=problem_responses(409, 415, 422),
    summary="Create an account",
)
async def create_user(body: UserCreate, auth: Auth) -> UserCreated:
    user = await auth.register(username=body.username, password=body.password)
    return UserCreated(id=user.id, username=user.username, created_at=user.created_at)


def _required(value: str | None, name: str) -> str:
    if not value:
        raise InvalidRequest(f"{name} is required")
    return value


@router.post(
    "/token",
    dependencies=[Depends(require_form)],
    responses=problem_responses(400, 401, 415, 429),
    summary="Get tokens: log in (password grant) or rotate a refresh token",
    description=(
        "OAuth 2.0 token endpoint, form-encoded. `grant_type=password` with `username` and "
        "`password` starts a login; `grant_type=refresh_token` with `refresh_token` exchanges "
        "it for a new pair. A refresh token works once: presenting a used one revokes the "
        "whole login. Errors carry the OAuth `error` code beside the problem fields. Repeated "
        "failed logins for one user name or from one address are refused with 429."
    ),
)
async def token(
    request: Request,
    response: Response,
    auth: Auth,
    form: Annotated[TokenRequest, Form()],
) -> TokenPair:
    issued: IssuedTokens
    if form.grant_type == "password":
        issued = await auth.login(
            username=_required(form.username, "username"),
            password=_required(form.password, "password"),
            client_ip=client_ip(request),
        )
    elif form.grant_type == "refresh_token":
        issued = await auth.refresh(refresh_token=_required(form.refresh_token, "refresh_token"))
    elif not form.grant_type:
        raise InvalidRequest("grant_type is required")
    else:
        raise UnsupportedGrantType("grant_type must be 'password' or 'refresh_token'")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return TokenPair(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
    )


@router.post(
    "/revoke",
    dependencies=[Depends(require_json)],
    responses=problem_responses(415, 422),
    summary="Log out: end the login of a refresh or access token",
    description="RFC 7009 semantics: 200 whether or not the token was known.",
)
async def revoke(body: RevokeRequest, auth: Auth) -> Revoked:
    await auth.revoke(token=body.token)
    return Revoked(revoked=True)


@router.get("/me", responses=problem_responses(401), summary="The signed-in user")
async def me(user: CurrentUser, auth: Auth) -> Me:
    record = await auth.user(user_id=user.user_id)
    return Me(
        id=record.id,
        username=record.username,
        roles=list(record.roles),
        created_at=record.created_at,
    )


@router.get(
    "/.well-known/jwks.json",
    summary="The public keys that verify access tokens",
    response_model=JwkSet,
)
async def jwks(request: Request, response: Response, keys: Keys) -> JwkSet:
    max_age = request.state.settings.jwks_max_age_seconds
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return JwkSet.model_validate(await keys.jwks())
