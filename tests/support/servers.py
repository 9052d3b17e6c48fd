"""Run the real servers for a test: an app in this process on a real socket (uvicorn), or a
service as its own process (`python -m ...`), waited for with a deadline, never a sleep."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import uvicorn
from starlette.types import ASGIApp

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_ready(
    url: str, *, deadline_s: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + deadline_s
    last_error = "no answer"
    async with httpx2.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {process.returncode}")
            try:
                response = await client.get(url)
                if response.status_code == 200:
                    return
                last_error = f"{response.status_code} {response.text[:200]}"
            except httpx2.TransportError as exc:
                last_error = repr(exc)
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {deadline_s} s: {last_error}")


@asynccontextmanager
async def serve_in_process(app: ASGIApp, *, ready_path: str = "/readyz") -> AsyncIterator[str]:
    """Serve `app` on a free loopback port in this event loop; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    base_url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_ready(base_url + ready_path)
        yield base_url
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class ServiceProcess:
    """`python -m <module>` with an environment, its output kept in a log file."""

    def __init__(
        self, module: str, *, env: Mapping[str, str], log_path: Path, args: tuple[str, ...] = ()
    ) -> None:
        self.module = module
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    async def wait_ready(self, url: str, deadline_s: float = 30.0) -> None:
        try:
            await wait_until_ready(url, deadline_s=deadline_s, process=self.process)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n--- {self.module} log ---\n{self.log()[-3000:]}") from exc
