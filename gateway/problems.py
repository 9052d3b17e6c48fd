"""problem+json answers from the raw ASGI proxy path (the FastAPI side uses shared.errors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.types import Send

from shared.errors import PROBLEM_JSON, problem_body


def problem_bytes(status: int, detail: str, instance: str, **extensions: Any) -> bytes:
    return orjson.dumps(problem_body(status, detail=detail, instance=instance, **extensions))


async def send_problem(
    send: Send,
    status: int,
    detail: str,
    *,
    instance: str,
    request_id: bytes,
    headers: Mapping[str, str] | None = None,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = problem_bytes(status, detail, instance)
    raw = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id),
    ]
    raw.extend(
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
    )
    raw.extend(extra_headers or ())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
