"""`/healthz` (the process answers) and `/readyz` (its dependencies answer)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from shared.errors import problem_response


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str | None = None
    # A failing non-critical check is reported but leaves the service ready (a flaky upstream
    # source, say: the service still serves what it has).
    critical: bool = True


ReadinessCheck = Callable[[Mapping[str, Any]], Awaitable[CheckResult]]

CHECK_TIMEOUT = 2.0

router = APIRouter(include_in_schema=False)


async def _run(check: ReadinessCheck, state: Mapping[str, Any]) -> tuple[CheckResult, float]:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(check(state), CHECK_TIMEOUT)
    except TimeoutError:
        result = CheckResult(ok=False, detail=f"no answer within {CHECK_TIMEOUT:g} s")
    except Exception as exc:
        result = CheckResult(ok=False, detail=f"{type(exc).__name__}: {exc}")
    return result, (time.perf_counter() - started) * 1000


async def run_checks(
    checks: Mapping[str, ReadinessCheck], state: Mapping[str, Any]
) -> tuple[bool, dict[str, Any]]:
    names = list(checks)
    results = await asyncio.gather(*(_run(checks[name], state) for name in names))
    report: dict[str, Any] = {}
    ready = True
    for name, (result, elapsed_ms) in zip(names, results, strict=True):
        entry: dict[str, Any] = {"ok": result.ok, "latency_ms": round(elapsed_ms, 1)}
        if result.detail:
            entry["detail"] = result.detail
        if not result.critical:
            entry["critical"] = False
        report[name] = entry
        ready = ready and (result.ok or not result.critical)
    return ready, report


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    checks: Mapping[str, ReadinessCheck] = request.app.state.readiness_checks
    ready, report = await run_checks(checks, request.state._state)
    if ready:
        return JSONResponse({"status": "ready", "checks": report})
    return problem_response(
        503,
        detail="A dependency is not reachable",
        instance=request.url.path,
        headers={"Retry-After": "5"},
        checks=report,
    )
