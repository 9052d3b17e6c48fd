"""How the local stack finds its servers, and the private instances it starts when none answers.

The machine's own PostgreSQL, Redis and RabbitMQ answer the probes; unused loopback ports stand
for "nothing answers"; the private instances run on unused ports with data in a temp folder."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.local import servers
from deploy.local.packages import SetupError
from tests.support.servers import free_port
from tests.support.stores import AMQP_URL, REDIS_URL, SERVER_DATABASE_URL

PROBES = {
    "postgres": ("postgresql://postgres@127.0.0.1:{port}/postgres", SERVER_DATABASE_URL),
    "redis": ("redis://127.0.0.1:{port}/0", REDIS_URL),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:{port}/", AMQP_URL),
}


@pytest.mark.parametrize("kind", sorted(PROBES))
async def test_the_running_server_answers(kind: str) -> None:
    probe = await servers.PROBES[kind](PROBES[kind][1])
    assert probe.answers, probe.detail
    assert probe.listening


@pytest.mark.parametrize("kind", sorted(PROBES))
async def test_an_unused_port_does_not_answer(kind: str) -> None:
    probe = await servers.PROBES[kind](PROBES[kind][0].format(port=free_port()))
    assert not probe.answers
    assert not probe.listening
    assert "nothing listens" in probe.detail


async def _silent_listener() -> AsyncIterator[int]:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
async def other_listener() -> AsyncIterator[int]:
    """A port where something accepts connections and speaks no protocol of ours."""
    async for port in _silent_listener():
        yield port


@pytest.mark.parametrize("kind", sorted(PROBES))
async def test_a_listener_that_is_not_the_server_does_not_answer(
    kind: str, other_listener: int
) -> None:
    probe = await servers.PROBES[kind](PROBES[kind][0].format(port=other_listener))
    assert probe.listening
    assert not probe.answers


async def test_a_wrong_password_is_reported_not_papered_over(tmp_path: Path) -> None:
    host, port = servers.host_port(AMQP_URL, 5672)
    url = f"amqp://guest:wrong-password@{host}:{port}/"
    with pytest.raises(SetupError, match="did not let us in") as caught:
        await servers.ensure_server(servers.RABBITMQ, url, tmp_path)
    assert "guest:***@" in str(caught.value)
    assert "wrong-password" not in str(caught.value)  # the URL named, its password not shown
    assert not (tmp_path / "rabbitmq").exists()  # nothing started


async def test_no_private_instance_for_a_server_elsewhere(tmp_path: Path) -> None:
    # 127.0.0.2 is not one of the names the stack treats as this machine.
    url = f"redis://127.0.0.2:{free_port()}/0"
    with pytest.raises(SetupError, match="it is not on this machine"):
        await servers.ensure_server(servers.REDIS, url, tmp_path)
    assert not (tmp_path / "redis").exists()


def _port_pair() -> int:
    """A free port p whose RabbitMQ distribution port (p + 20000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 40000)
        try:
            for candidate in (port, port + 20000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


async def test_when_nothing_answers_private_servers_start_and_stop(tmp_path: Path) -> None:
    missing = [kind for kind in servers.KINDS if not servers.binaries_present(kind)]
    if missing and os.environ.get("CI") != "true":
        # Outside CI, a machine whose servers run elsewhere (containers, say) may lack them.
        packages = " ".join(s.package for s in servers.SERVERS if s.kind in missing)
        pytest.skip(f"server programs not installed: apt-get install {packages}")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    environ = {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/tinkerstack",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{_port_pair()}/",
    }
    try:
        started = await servers.ensure_servers(run_dir, environ)
        assert started == ["postgres", "redis", "rabbitmq"]
        for server in servers.SERVERS:
            probe = await servers.PROBES[server.kind](server.url(environ))
            assert probe.answers, f"{server.kind}: {probe.detail}"
            assert (run_dir / server.kind / "server.json").exists()
        # The database was created, and a second run finds everything answering.
        assert not await servers.ensure_database(environ["DATABASE_URL"])
        assert await servers.ensure_servers(run_dir, environ) == []
    finally:
        stopped = await asyncio.to_thread(servers.stop_private_servers, run_dir)
        postgres_home = (run_dir / "postgres").resolve()
        if postgres_home.is_relative_to("/var/lib/tinkerstack"):
            shutil.rmtree(postgres_home.parent, ignore_errors=True)
    assert len(stopped) == 3
    for server in servers.SERVERS:
        assert not (await servers.PROBES[server.kind](server.url(environ))).listening
