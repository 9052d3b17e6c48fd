"""The local stack: `make up`, `make down`, and the preparation `make test` and `make bench` share.

    python -m deploy.local.stack prepare --for up|test|bench
    python -m deploy.local.stack up [--detach] [--ready-deadline SECONDS]
    python -m deploy.local.stack down

`up` prepares (OS packages, servers answering, the database), runs every service's `setup`
(migrations + first-run data), then supervises the gateway and every service that exists (see
supervisor.py) until Ctrl-C. With `--detach` the supervisor runs in the background (its pid in
.run/stack.json, its output in .run/stack.log) and `down` stops it, then every private server
under .run/.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from deploy.local.background import RunFiles, running_pid, start_detached, stop_detached
from deploy.local.packages import SetupError, ensure_present
from deploy.local.servers import ensure_servers, listening, stop_private_servers
from deploy.local.supervisor import Program, Supervisor, Timing, say

if TYPE_CHECKING:
    from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / ".run"
FILES = RunFiles(RUN_DIR)

# Debian's fortunes: the quotes service's first-run data (`make up`, once that service exists)
# and the corpus of its benchmark.
FORTUNES = {"/usr/share/games/fortunes/science": "fortunes"}
# What each use of the stack needs from Debian besides the servers: {command or path: package}.
NEEDS: dict[str, dict[str, str]] = {
    "up": {},
    "test": {
        "/usr/bin/chromium": "chromium",  # the browser tests
        # the C++ tests: Clang, and both compilers cross-building for arm64, run under qemu
        "/usr/bin/clang++": "clang",
        "/usr/bin/aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu",
        "/usr/bin/qemu-aarch64": "qemu-user",
    },
    # load generator, reference proxy, corpus
    "bench": {"/usr/bin/wrk": "wrk", "/usr/sbin/nginx": "nginx", **FORTUNES},
}


# -- what to run --------------------------------------------------------------------------------


def discover_services(root: Path = ROOT) -> list[str]:
    """Every service that exists (`services/<name>/__main__.py`), by name."""
    return sorted(path.parent.name for path in root.glob("services/*/__main__.py"))


def settings_class(package: str) -> type[ServiceSettings]:
    """The settings class of a package (`gateway`, `services.auth`): in its `config` module."""
    from shared.settings import ServiceSettings

    module = importlib.import_module(f"{package}.config")
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if issubclass(cls, ServiceSettings) and cls.__module__ == module.__name__:
            return cls
    raise SetupError(f"{package}/config.py has no ServiceSettings subclass")


def settings_of(package: str) -> ServiceSettings:
    """A package's settings, read from the environment as the package itself would."""
    try:
        return settings_class(package)()
    except (ImportError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise SetupError(f"{package}: its settings do not load: {exc}") from exc


def base_url(settings: ServiceSettings) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (a host to reach, not one to bind)
        host = "127.0.0.1"
    return f"http://{host}:{settings.port}"


def gateway_upstreams(gateway: ServiceSettings, urls: dict[str, str]) -> dict[str, str]:
    """GATEWAY_<SERVICE>_URLS for each upstream the gateway knows: the running service's URL, or
    empty (not deployed: the gateway answers 503 for it and leaves it out of its readiness).
    A variable already set is left as it is."""
    env = {}
    for field in type(gateway).model_fields:
        if not field.endswith("_urls"):
            continue
        name = f"GATEWAY_{field.upper()}"
        if name not in os.environ:
            env[name] = urls.get(field.removesuffix("_urls"), "")
    return env


def programs(root: Path = ROOT) -> list[Program]:
    """The gateway (when it exists) and every service, one process each."""
    services = {name: settings_of(f"services.{name}") for name in discover_services(root)}
    urls = {name: base_url(settings) for name, settings in services.items()}
    result = []
    if (root / "gateway" / "__main__.py").exists():
        gateway = settings_of("gateway")
        result.append(
            Program(
                name="gateway",
                argv=[sys.executable, "-m", "gateway"],
                env=gateway_upstreams(gateway, urls),
                cwd=str(root),
                ready_url=base_url(gateway) + "/readyz",
                url=f"{base_url(gateway)}/  (API docs: {base_url(gateway)}/docs)",
            )
        )
    for name in services:
        result.append(
            Program(
                name=name,
                argv=[sys.executable, "-m", f"services.{name}"],
                cwd=str(root),
                ready_url=urls[name] + "/readyz",
                url=urls[name],
            )
        )
    return result


# -- steps --------------------------------------------------------------------------------------


def prepare(purpose: str) -> list[str]:
    """OS packages, servers answering, the database; the servers started privately now."""
    needs = dict(NEEDS[purpose])
    if purpose == "up" and "quotes" in discover_services():
        needs.update(FORTUNES)
    ensure_present(needs, why=f"make {purpose}")
    RUN_DIR.mkdir(exist_ok=True)
    return asyncio.run(ensure_servers(RUN_DIR, os.environ))


def refuse_busy_ports(items: Sequence[Program]) -> None:
    """A program whose port already answers would only fail to bind, again and again."""

    async def busy() -> list[str]:
        found = []
        for program in items:
            parts = urlsplit(program.ready_url or "")
            if parts.port and await listening(parts.hostname or "127.0.0.1", parts.port):
                found.append(f"{program.name} ({parts.hostname}:{parts.port})")
        return found

    taken = asyncio.run(busy())
    if taken:
        raise SetupError(
            f"port(s) already in use: {', '.join(taken)}. Another stack (`make down` stops a "
            "detached one)? Or choose other ports: <NAME>_PORT, e.g. GATEWAY_PORT=8100."
        )


def run_setups(root: Path = ROOT) -> None:
    """`python -m services.<name> setup` for each service, in order; stop at the first failure."""
    for name in discover_services(root):
        say(f"{name}: setup (migrations, first-run data)")
        result = subprocess.run(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", f"services.{name}", "setup"], cwd=root, check=False
        )
        if result.returncode != 0:
            raise SetupError(f"`python -m services.{name} setup` failed (exit {result.returncode})")


# -- commands -----------------------------------------------------------------------------------


def up(*, detach: bool, ready_deadline: float) -> int:
    pid = running_pid(FILES)
    if pid is not None:
        raise SetupError(f"a stack already runs (pid {pid}); `make down` stops it")
    items = programs()
    refuse_busy_ports(items)
    started = prepare("up")
    try:
        run_setups()
        timing = Timing(ready_deadline=ready_deadline)
        if detach:
            started = []  # left running for `make down`
            return start_detached(FILES, items, timing)
        supervisor = Supervisor(items, timing=timing, log_dir=FILES.log_dir, state_file=FILES.state)
        return asyncio.run(supervisor.run())
    finally:
        if started:
            say(f"stopping the servers this run started: {', '.join(started)}")
            stop_private_servers(RUN_DIR, started)


def down() -> int:
    was_running = stop_detached(FILES)
    stopped = stop_private_servers(RUN_DIR)
    for name in stopped:
        say(f"stopped the private {name}")
    if not was_running and not stopped:
        say("nothing was running")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.stack")
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="packages, servers answering, the database")
    prep.add_argument("--for", dest="purpose", choices=sorted(NEEDS), default="up")
    start = sub.add_parser("up", help="prepare, set up and run the stack")
    start.add_argument("--detach", action="store_true", help="run in the background")
    start.add_argument("--ready-deadline", type=float, default=90.0, metavar="SECONDS")
    sub.add_parser("down", help="stop a detached stack and the private servers")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            prepare(args.purpose)
            return 0
        if args.command == "up":
            return up(detach=args.detach, ready_deadline=args.ready_deadline)
        return down()
    except SetupError as exc:
        say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
