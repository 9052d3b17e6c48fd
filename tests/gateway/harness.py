"""The gateway as a real process for tests: started with an environment, waited for, stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import ServiceProcess, free_port
from tests.support.stores import Stores


@dataclass
class RunningGateway:
    base_url: str
    process: ServiceProcess

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.process.log()


def dead_url() -> str:
    """A loopback address where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@asynccontextmanager
async def run_gateway(
    *, stores: Stores, jwks_url: str, log_dir: Path, env: Mapping[str, str]
) -> AsyncIterator[RunningGateway]:
    port = free_port()
    process = ServiceProcess(
        "gateway",
        env={
            **stores.env(),
            "JWKS_URL": jwks_url,
            "GATEWAY_PORT": str(port),
            **env,
        },
        log_path=log_dir / f"gateway-{port}.log",
    )
    process.start()
    try:
        await process.wait_ready(f"http://127.0.0.1:{port}/healthz")
        yield RunningGateway(f"http://127.0.0.1:{port}", process)
    finally:
        process.stop()
