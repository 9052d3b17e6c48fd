"""PostgreSQL, Redis and RabbitMQ for the local stack.

`ensure_servers` makes sure each answers at its configured URL. When nothing listens there and
the URL is on this machine (a loopback host), it starts a private instance on that port with its
data under `.run/<kind>/` (installing the Debian package first when it is missing and we run as
root); a server it did not start is never touched. Each private instance leaves `server.json` in
its folder, so `make down` (`stop_private_servers`) can stop exactly those.

The probes speak each protocol with the project's own clients (asyncpg, redis, aio-pika), imported
when needed, so stopping (`make down`) works with the standard library alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import pwd
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from deploy.local.packages import SetupError, install_packages, run
from deploy.local.supervisor import alive, stop_process

DEFAULT_URLS = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/tinkerstack",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
START_DEADLINE_S = 90.0


@dataclass(frozen=True)
class Probe:
    answers: bool  # it speaks the protocol and lets us in
    listening: bool  # something accepts connections there
    detail: str


@dataclass(frozen=True)
class Server:
    kind: str  # "postgres" | "redis" | "rabbitmq"
    env_var: str
    package: str  # the Debian package that provides it

    def url(self, environ: dict[str, str] | os._Environ[str]) -> str:
        return environ.get(self.env_var) or DEFAULT_URLS[self.env_var]


POSTGRES = Server("postgres", "DATABASE_URL", "postgresql")
REDIS = Server("redis", "REDIS_URL", "redis-server")
RABBITMQ = Server("rabbitmq", "AMQP_URL", "rabbitmq-server")
SERVERS = (POSTGRES, REDIS, RABBITMQ)
KINDS = tuple(server.kind for server in SERVERS)


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


async def listening(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(2.0):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


# -- probes -------------------------------------------------------------------------------------


async def probe_postgres(url: str) -> Probe:
    import asyncpg

    host, port = host_port(url, 5432)
    if not await listening(host, port):
        return Probe(False, False, f"nothing listens on {host}:{port}")
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except asyncpg.InvalidCatalogNameError:
        return Probe(True, True, "the server answers; the database does not exist yet")
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return Probe(False, True, f"{type(exc).__name__}: {exc}")
    try:
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return Probe(True, True, f"PostgreSQL {version}")


async def probe_redis(url: str) -> Probe:
    import redis.asyncio
    import redis.exceptions

    host, port = host_port(url, 6379)
    if not await listening(host, port):
        return Probe(False, False, f"nothing listens on {host}:{port}")
    client = redis.asyncio.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        info = await client.info("server")
    except (OSError, redis.exceptions.RedisError) as exc:
        return Probe(False, True, f"{type(exc).__name__}: {exc}")
    finally:
        await client.aclose()
    return Probe(True, True, f"Redis {info.get('redis_version', '?')}")


async def probe_rabbitmq(url: str) -> Probe:
    import aio_pika

    host, port = host_port(url, 5672)
    if not await listening(host, port):
        return Probe(False, False, f"nothing listens on {host}:{port}")
    try:
        connection = await aio_pika.connect(url, timeout=10)
    except Exception as exc:  # aiormq raises many unrelated types for a refused login
        return Probe(False, True, f"{type(exc).__name__}: {exc}")
    await connection.close()
    return Probe(True, True, "RabbitMQ answers")


PROBES: dict[str, Callable[[str], Awaitable[Probe]]] = {
    "postgres": probe_postgres,
    "redis": probe_redis,
    "rabbitmq": probe_rabbitmq,
}


async def wait_until_answers(kind: str, url: str, deadline_s: float = START_DEADLINE_S) -> Probe:
    deadline = time.monotonic() + deadline_s
    while True:
        probe = await PROBES[kind](url)
        if probe.answers or time.monotonic() > deadline:
            return probe
        await asyncio.sleep(0.3)


# -- private instances --------------------------------------------------------------------------


def _state_path(home: Path) -> Path:
    return home / "server.json"


def _write_state(home: Path, **state: object) -> None:
    _state_path(home).write_text(json.dumps(state, indent=2))


def _postgres_bin(name: str) -> str:
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if versions:
        return str(versions[-1])
    found = shutil.which(name)
    if found is None:
        raise SetupError(f"{name} not found (Debian package postgresql)")
    return found


def _as_postgres_user() -> tuple[list[str], int | None]:
    """PostgreSQL refuses to run as root: then it runs as the `postgres` system user."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError as exc:
        raise SetupError("no `postgres` system user (Debian package postgresql)") from exc
    return ["runuser", "-u", "postgres", "--"], uid


def _postgres_home(run_dir: Path, prefix: list[str], uid: int | None) -> Path:
    """`.run/postgres`, owned by the user PostgreSQL runs as. When that user cannot reach it (a
    checkout under /root, say), the data lives under /var/lib/tinkerstack/ and `.run/postgres`
    is a link to it."""
    home = run_dir / "postgres"
    if uid is None:
        home.mkdir(parents=True, exist_ok=True)
        return home
    if home.is_symlink():
        return home.resolve()
    if not home.exists():
        home.mkdir(parents=True)
        os.chown(home, uid, -1)
    if run([*prefix, "test", "-w", f"{home}/."]).returncode == 0:
        return home
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]
    elsewhere = Path("/var/lib/tinkerstack") / digest / "postgres"
    elsewhere.mkdir(parents=True, exist_ok=True)
    elsewhere.parent.parent.chmod(0o755)
    elsewhere.parent.chmod(0o755)
    elsewhere.chmod(0o700)
    os.chown(elsewhere, uid, -1)
    shutil.rmtree(home)  # empty but for what an earlier failed start left
    home.symlink_to(elsewhere, target_is_directory=True)
    return elsewhere


def start_private_postgres(run_dir: Path, url: str) -> Path:
    parts = urlsplit(url)
    port = parts.port or 5432
    user = unquote(parts.username or "postgres")
    prefix, uid = _as_postgres_user()
    home = _postgres_home(run_dir, prefix, uid)
    data = home / "data"
    if not (data / "PG_VERSION").exists():
        result = run(
            [*prefix, _postgres_bin("initdb"), "-D", str(data), "-U", user, "--auth=trust",
             "-E", "UTF8", "--no-locale"],
            capture_output=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise SetupError(f"initdb failed:\n{result.stdout}{result.stderr}")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'tinkerstack.conf'\n")
    # Rewritten at every start: the port follows the URL. TCP only (a socket path under a deep
    # checkout can pass the 107-byte limit). synchronous_commit=off loses at most the last
    # moment's commits on a crash, never consistency: right for a development server.
    (data / "tinkerstack.conf").write_text(
        f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n"
        "max_connections = 300\nsynchronous_commit = off\n"
    )
    if uid is not None:
        os.chown(data / "tinkerstack.conf", uid, -1)
    result = run(
        [*prefix, _postgres_bin("pg_ctl"), "-D", str(data), "-l", str(home / "postgres.log"),
         "-w", "-t", "60", "start"],
        capture_output=True,
    )  # fmt: skip
    if result.returncode != 0:
        log = (home / "postgres.log").read_text(errors="replace")[-2000:]
        raise SetupError(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{log}")
    _write_state(home, kind="postgres", port=port, data=str(data), run_as=prefix)
    return home


def start_private_redis(run_dir: Path, url: str) -> Path:
    parts = urlsplit(url)
    port = parts.port or 6379
    home = run_dir / "redis"
    home.mkdir(parents=True, exist_ok=True)
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise SetupError("redis-server not found (Debian package redis-server)")
    argv = [
        redis_server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(home),
        "--daemonize", "yes", "--pidfile", str(home / "redis.pid"),
        "--logfile", str(home / "redis.log"),
    ]  # fmt: skip
    if parts.password:
        argv += ["--requirepass", unquote(parts.password)]
    result = run(argv, capture_output=True)
    if result.returncode != 0:
        raise SetupError(f"redis-server did not start:\n{result.stdout}{result.stderr}")
    _write_state(home, kind="redis", port=port, pid_file=str(home / "redis.pid"))
    return home


def _rabbitmq_server() -> str:
    # Debian's /usr/sbin wrapper switches to the `rabbitmq` user, who cannot write our .run/;
    # the script behind it runs as whoever starts it.
    inner = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
    if inner.exists():
        return str(inner)
    found = shutil.which("rabbitmq-server")
    if found is None:
        raise SetupError("rabbitmq-server not found (Debian package rabbitmq-server)")
    return found


def rabbitmq_env(home: Path, port: int) -> dict[str, str]:
    """Everything in .run/rabbitmq: the machine's /etc/rabbitmq (its listener, node name,
    plugins) would collide with a system broker."""
    return {
        "HOME": str(home),  # the Erlang cookie
        "RABBITMQ_NODENAME": f"tinkerstack{port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(port + 20000 if port + 20000 < 65536 else port - 20000),
        "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
    }


def start_private_rabbitmq(run_dir: Path, url: str) -> Path:
    parts = urlsplit(url)
    port = parts.port or 5672
    if (parts.username or "guest", parts.password or "guest") != ("guest", "guest"):
        raise SetupError(
            "a private RabbitMQ knows only guest/guest: point AMQP_URL at a broker with your "
            "user, or use amqp://guest:guest@127.0.0.1:PORT/"
        )
    home = run_dir / "rabbitmq"
    home.mkdir(parents=True, exist_ok=True)
    env = rabbitmq_env(home, port)
    (home / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users.guest = true\n"
    )
    (home / "enabled_plugins").write_text("[].\n")
    (home / "rabbitmq-env.conf").write_text("")
    result = run(
        [_rabbitmq_server(), "-detached"],
        env={**os.environ, **env},
        cwd=home,
        capture_output=True,
    )
    if result.returncode != 0:
        raise SetupError(f"rabbitmq-server did not start:\n{result.stdout}{result.stderr}")
    _write_state(home, kind="rabbitmq", port=port, pid_file=env["RABBITMQ_PID_FILE"])
    return home


STARTERS: dict[str, Callable[[Path, str], Path]] = {
    "postgres": start_private_postgres,
    "redis": start_private_redis,
    "rabbitmq": start_private_rabbitmq,
}


def binaries_present(kind: str) -> bool:
    finders: dict[str, Callable[[], str]] = {
        "postgres": lambda: _postgres_bin("initdb"),
        "redis": lambda: shutil.which("redis-server") or "",
        "rabbitmq": _rabbitmq_server,
    }
    try:
        return bool(finders[kind]())
    except SetupError:
        return False


# -- stopping -----------------------------------------------------------------------------------


def _pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# What the command line of a private server's process contains.
PROGRAM_NAMES = {"redis": "redis-server", "rabbitmq": "beam"}


def _runs(pid: int, name: str) -> bool:
    try:
        return name in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def stop_private(home: Path) -> str | None:
    """Stop the private server whose folder is `home`; its name if one was running."""
    state_path = _state_path(home)
    if not state_path.exists():
        return None
    state = json.loads(state_path.read_text())
    if state["kind"] == "postgres":
        result = run(
            [*state["run_as"], _postgres_bin("pg_ctl"), "-D", state["data"], "-m", "fast",
             "-w", "stop"],
            capture_output=True,
        )  # fmt: skip
        stopped = result.returncode == 0
    else:
        pid = _pid_from(Path(state["pid_file"]))
        # A pid file outlives a reboot; its number may belong to another process by now.
        stopped = pid is not None and alive(pid) and _runs(pid, PROGRAM_NAMES[state["kind"]])
        if pid is not None and stopped:
            stop_process(pid, deadline_s=60.0)
    state_path.unlink()
    return f"{state['kind']} on port {state['port']}" if stopped else None


def stop_private_servers(run_dir: Path, kinds: Sequence[str] = KINDS) -> list[str]:
    stopped = []
    for kind in kinds:
        name = stop_private(run_dir / kind)
        if name is not None:
            stopped.append(name)
    return stopped


# -- the whole step -----------------------------------------------------------------------------


def _say(message: str) -> None:
    print(f"servers | {message}", file=sys.stderr, flush=True)


def _missing_server_help(server: Server, url: str, probe: Probe) -> str:
    host, port = host_port(url, 0)
    named = f"{server.env_var}={_redacted(url)}"
    if probe.listening:
        return (
            f"{named}: something listens on {host}:{port} but it did not let us in "
            f"({probe.detail}). Fix the URL (user, password, vhost) or the access rules."
        )
    return (
        f"{named}: nothing answers, and it is not on this machine, so no private instance is "
        f"started. Start that server, or unset {server.env_var} to use a local one."
    )


async def ensure_server(server: Server, url: str, run_dir: Path) -> bool:
    """Make `url` answer; True when a private instance was started for it."""
    probe = await PROBES[server.kind](url)
    if probe.answers:
        _say(f"{server.kind}: {probe.detail} at {_redacted(url)}")
        return False
    host, _ = host_port(url, 0)
    if probe.listening or host not in LOOPBACK:
        raise SetupError(_missing_server_help(server, url, probe))
    if not binaries_present(server.kind):
        install_packages([server.package], why=f"a private {server.kind} for the stack")
        # Installing it may have started the machine's own server there.
        probe = await PROBES[server.kind](url)
        if probe.answers:
            _say(f"{server.kind}: {probe.detail} at {_redacted(url)}")
            return False
    _say(f"{server.kind}: nothing answers at {_redacted(url)}: starting a private one in {run_dir}")
    home = await asyncio.to_thread(STARTERS[server.kind], run_dir, url)
    probe = await wait_until_answers(server.kind, url)
    if not probe.answers:
        raise SetupError(f"the private {server.kind} in {home} does not answer: {probe.detail}")
    _say(f"{server.kind}: {probe.detail} (private, data in {home})")
    return True


async def ensure_database(url: str) -> bool:
    """Create the database that `url` names when it does not exist; True when created."""
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=10)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    database = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(with_database(url, "postgres"), timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    except asyncpg.DuplicateDatabaseError:
        return False
    finally:
        await admin.close()
    _say(f"postgres: created database {database}")
    return True


def _redacted(url: str) -> str:
    parts: SplitResult = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


async def ensure_servers(run_dir: Path, environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """Every server answers (and the database exists); the kinds started privately now."""
    started = []
    for server in SERVERS:
        if await ensure_server(server, server.url(environ), run_dir):
            started.append(server.kind)
    await ensure_database(POSTGRES.url(environ))
    return started
