"""Domain errors and their one translation into RFC 9457 problem details.

The service layer raises the exceptions below; routes never build error bodies by hand. Every
error a client can cause, FastAPI's own validation errors included, leaves as
`application/problem+json`; anything unexpected becomes a bare 500 problem without a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import aiormq
import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match

PROBLEM_JSON = "application/problem+json"

logger = logging.getLogger(__name__)


class ProblemError(Exception):
    """An error a client can see. Subclasses fix the status; `detail` says what went wrong."""

    status: int = 400

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or HTTPStatus(self.status).phrase)
        self.detail = detail or HTTPStatus(self.status).phrase
        self.headers = dict(headers or {})
        self.extensions = extensions


class BadRequest(ProblemError):
    status = 400


class Unauthorized(ProblemError):
    status = 401

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extensions)


class Forbidden(ProblemError):
    status = 403


class NotFound(ProblemError):
    status = 404


class Conflict(ProblemError):
    status = 409


class PayloadTooLarge(ProblemError):
    status = 413


class UnsupportedMediaType(ProblemError):
    status = 415


class Unprocessable(ProblemError):
    status = 422


class TooManyRequests(ProblemError):
    status = 429

    def __init__(self, detail: str | None = None, *, retry_after: int, **extensions: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))}, **extensions)


class ServiceUnavailable(ProblemError):
    status = 503

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **extensions: Any):
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, **extensions)


class Problem(BaseModel):
    """RFC 9457 problem details: how every error of the stack is answered."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry documenting these error statuses of a route."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def problem_body(
    status: int, *, detail: str | None = None, instance: str | None = None, **extensions: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return body


def problem_response(
    status: int,
    *,
    detail: str | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder(problem_body(status, detail=detail, instance=instance, **extensions)),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_JSON,
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        detail=exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extensions,
    )


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method the path is served with. Starlette's 405 names only the first route whose
    path matched, and a path served by one route per method (GET and DELETE /items/{id}) has
    several. Each method is probed on a scope of its own: routing writes into the scope."""
    allowed = []
    for method in _METHODS:
        probe = {
            "type": "http",
            "method": method,
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
        }
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI answers a JSON body that is not UTF-8 with a bare 400 "error parsing the
        # body" (unless its first bytes pass for a UTF-16 mark: then 422). It is malformed JSON
        # like any other, and gets the same documented 422.
        not_utf8 = {"type": "json_invalid", "loc": ("body",), "msg": "The body is not UTF-8"}
        return await _on_validation_error(request, RequestValidationError([not_utf8]))
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers["Allow"] = allowed
    return problem_response(
        exc.status_code, detail=detail, instance=request.url.path, headers=headers
    )


def _describe(error: Mapping[str, Any]) -> dict[str, Any]:
    # Pydantic's own error dicts carry the offending input and internals (`url`, `ctx` objects);
    # the client needs where and what.
    return {"loc": list(error.get("loc", ())), "msg": error.get("msg"), "type": error.get("type")}


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_describe(e) for e in exc.errors()]
    first = errors[0] if errors else None
    detail = "The request is not valid"
    if first:
        where = ".".join(str(part) for part in first["loc"])
        detail = f"{where}: {first['msg']}"
    return problem_response(422, detail=detail, instance=request.url.path, errors=errors)


# A store that does not answer is the service's trouble, not the client's: 503 + Retry-After
# rather than a bare 500.
STORE_UNREACHABLE: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    aiormq.exceptions.AMQPConnectionError,
    ConnectionError,
)


async def _on_store_unreachable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("a store is unreachable: %s: %s", type(exc).__name__, exc)
    return problem_response(
        503,
        detail="A dependency of the service is not reachable",
        instance=request.url.path,
        headers={"Retry-After": "5"},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, instance=request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    for error in STORE_UNREACHABLE:
        app.add_exception_handler(error, _on_store_unreachable)
    app.add_exception_handler(Exception, _on_unexpected)
