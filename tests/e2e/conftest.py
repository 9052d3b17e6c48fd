"""The stack of the end-to-end tests: the real gateway, auth and quotes processes on stores of
their own, one stack per test module."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import pytest

from tests.support.servers import ROOT, ServiceProcess, free_port
from tests.support.stores import Stores, fresh_stores

FORTUNES = (
    "Simple things should be simple.\n%\nA journey of a thousand miles begins with one step.\n%\n"
)


@dataclass
class Stack:
    gateway: str
    auth: ServiceProcess
    quotes: ServiceProcess
    env: dict[str, str]


def setup(module: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", module, "setup"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
async def stores() -> AsyncIterator[Stores]:
    """Stores of its own: `setup` makes auth's signing key with this stack's secret."""
    async with fresh_stores() as created:
        yield created


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    """Extra environment for the stack's processes; a module overrides it to tune the stack."""
    return {}


@pytest.fixture(scope="module")
async def stack(
    stores: Stores, stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    logs = tmp_path_factory.mktemp("e2e-logs")
    fortunes = tmp_path_factory.mktemp("fortunes")
    (fortunes / "wisdom").write_text(FORTUNES)
    (fortunes / "wisdom.dat").write_bytes(b"")  # strfile's index marks a fortune file
    auth_port, quotes_port, gateway_port = free_port(), free_port(), free_port()
    env = {
        **stores.env(),
        "LOG_LEVEL": "INFO",
        "JWKS_URL": f"http://127.0.0.1:{auth_port}/auth/.well-known/jwks.json",
        "AUTH_PORT": str(auth_port),
        "AUTH_ARGON2_MEMORY_KIB": "1024",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_KEY_ACTIVATION_DELAY_SECONDS": "0",
        "QUOTES_PORT": str(quotes_port),
        "QUOTES_FORTUNES_DIR": str(fortunes),
        "GATEWAY_PORT": str(gateway_port),
        "GATEWAY_AUTH_URLS": f"http://127.0.0.1:{auth_port}",
        "GATEWAY_QUOTES_URLS": f"http://127.0.0.1:{quotes_port}",
        **{f"GATEWAY_{name}_URLS": "" for name in ("CHAT", "FEEDS", "IMAGING", "COMPUTE")},
        **stack_env,
    }
    setup("services.auth", env)
    setup("services.quotes", env)
    auth = ServiceProcess("services.auth", env=env, log_path=logs / "auth.log")
    quotes = ServiceProcess("services.quotes", env=env, log_path=logs / "quotes.log")
    gateway = ServiceProcess("gateway", env=env, log_path=logs / "gateway.log")
    processes = (auth, quotes, gateway)
    try:
        for process in processes:
            process.start()
        await auth.wait_ready(f"http://127.0.0.1:{auth_port}/readyz")
        await quotes.wait_ready(f"http://127.0.0.1:{quotes_port}/readyz")
        await gateway.wait_ready(f"http://127.0.0.1:{gateway_port}/readyz")
        yield Stack(gateway=f"http://127.0.0.1:{gateway_port}", auth=auth, quotes=quotes, env=env)
    finally:
        for process in reversed(processes):
            process.stop()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=stack.gateway, timeout=30) as http:
        yield http
