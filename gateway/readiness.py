"""The gateway's readiness: each deployed service's own /readyz (ready when at least one of its
instances is), reported per service, beside the gateway's Redis. A service's answer is reused
for a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx2

from gateway.upstreams import UpstreamPool
from shared.health import CheckResult, ReadinessCheck

CHECK_TIMEOUT_S = 1.5
REUSE_S = 1.0


async def _instance_ready(http: httpx2.AsyncClient, base_url: str) -> str | None:
    """None when the instance answers ready, else why not."""
    try:
        response = await http.get(f"{base_url}/readyz", timeout=CHECK_TIMEOUT_S)
    except httpx2.TransportError as exc:
        return f"{base_url}: not reachable ({type(exc).__name__})"
    if response.status_code != 200:
        return f"{base_url}: not ready ({response.status_code})"
    return None


def service_check(pool: UpstreamPool) -> ReadinessCheck:
    # Every open home page and every load balancer asks /readyz, which asks every service: a
    # result is reused for a second so that many askers cost the services one check.
    last: list[tuple[float, CheckResult]] = []

    async def check(state: Mapping[str, Any]) -> CheckResult:
        if last and time.monotonic() - last[0][0] < REUSE_S:
            return last[0][1]
        http: httpx2.AsyncClient = state["http"]
        urls = [instance.base_url for instance in pool.instances]
        problems = await asyncio.gather(*(_instance_ready(http, url) for url in urls))
        failing = [p for p in problems if p]
        result = CheckResult(
            ok=len(failing) < len(urls), detail="; ".join(failing) if failing else None
        )
        last[:] = [(time.monotonic(), result)]
        return result

    return check


def service_checks(pools: Mapping[str, UpstreamPool]) -> dict[str, ReadinessCheck]:
    return {name: service_check(pool) for name, pool in pools.items() if pool.deployed}
