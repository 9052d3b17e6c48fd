"""The local stack's supervisor, run as `make up` runs it (its own process, real signals), over
small throwaway programs instead of the services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from deploy.local.background import (
    RunFiles,
    read_state,
    running_pid,
    start_detached,
    stop_detached,
)
from deploy.local.supervisor import Program, Timing
from tests.support.servers import ROOT, free_port

DEADLINE_S = 20.0


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan may wait a while to be reaped where PID 1 is lazy)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(condition: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {deadline_s} s: {what}")


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


class Run:
    def __init__(self, process: subprocess.Popen[bytes], state_file: Path, out: Path) -> None:
        self.process = process
        self.state_file = state_file
        self.out = out

    def state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def output_line(self, prefix: str) -> str | None:
        for line in self.output().splitlines():
            if line.split(" | ", 1)[-1].startswith(prefix):
                return line.split(" | ", 1)[1]
        return None


@contextmanager
def supervisor(tmp_path: Path, programs: list[dict[str, Any]], **timing: float) -> Iterator[Run]:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"programs": programs, **timing}))
    state_file, out = tmp_path / "state.json", tmp_path / "out.log"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "deploy.local.supervisor", str(spec),
             "--state-file", str(state_file), "--log-dir", str(tmp_path / "logs")],
            cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    run = Run(process, state_file, out)
    try:
        yield run
    finally:
        if process.poll() is None:  # a failed test: stop it as `make down` would
            process.terminate()
            try:
                process.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def test_a_program_that_dies_is_reported_and_restarted_until_it_stays_up(tmp_path: Path) -> None:
    # Dies twice (exit 3), then stays up: the third start must happen, and be the last.
    counter = tmp_path / "starts"
    flaky = python(f"""
        import pathlib, sys, time
        counter = pathlib.Path({str(counter)!r})
        starts = len(counter.read_text()) if counter.exists() else 0
        counter.write_text("x" * (starts + 1))
        print("start", starts + 1, flush=True)
        if starts < 2:
            sys.exit(3)
        time.sleep(300)
    """)
    with supervisor(tmp_path, [{"name": "flaky", "argv": flaky}], backoff_initial=0.05) as run:
        wait_for(lambda: run.output_line("start 3"), "the third start")
        state = wait_for(lambda: run.state().get("programs", {}).get("flaky", {}).get("pid") and
                         run.state(), "the third process in the state file")  # fmt: skip
        assert state["programs"]["flaky"]["restarts"] == 2
        assert alive(state["programs"]["flaky"]["pid"])
        output = run.output()
        assert output.count("flaky exited with code 3") == 2
        assert "restart 2 in" in output
        # Each line carries its program's name; the raw lines also land in its log file.
        assert "flaky | start 1" in output
        assert (tmp_path / "logs" / "flaky.log").read_text().splitlines()[:3] == [
            "start 1",
            "start 2",
            "start 3",
        ]
        assert counter.read_text() == "xxx"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_every_program_and_what_they_started(
    tmp_path: Path, sig: signal.Signals
) -> None:
    parent = python("""
        import subprocess, time
        child = subprocess.Popen(["sleep", "300"])
        print("grandchild", child.pid, flush=True)
        time.sleep(300)
    """)
    stubborn = python("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        time.sleep(300)
    """)
    programs = [{"name": "parent", "argv": parent}, {"name": "stubborn", "argv": stubborn}]
    with supervisor(tmp_path, programs, stop_timeout=1.0) as run:
        line = wait_for(lambda: run.output_line("grandchild"), "the grandchild's pid")
        wait_for(lambda: run.output_line("ignoring SIGTERM"), "the stubborn program")
        grandchild = int(line.split()[1])
        state = run.state()
        pids = [state["programs"][name]["pid"] for name in ("parent", "stubborn")]
        assert all(alive(pid) for pid in [*pids, grandchild])

        # As a terminal's Ctrl-C does, the signal reaches the supervisor only (the programs run
        # in process groups of their own).
        run.process.send_signal(sig)
        assert run.process.wait(DEADLINE_S) == 0
        for pid in [*pids, grandchild]:
            wait_for(lambda pid=pid: not alive(pid), f"pid {pid} gone")
        assert "stubborn did not stop within 1 s: SIGKILL" in run.output()
        assert run.state()["state"] == "stopped"


def test_it_still_stops_everything_when_its_output_reader_is_gone(tmp_path: Path) -> None:
    # `make up | tee log`: Ctrl-C ends tee as well; the supervisor must stop the programs anyway
    # (and keep draining their output meanwhile, so that none blocks on a full pipe).
    chatty = python("""
        import itertools, time
        for n in itertools.count():
            print("line", n, "x" * 200, flush=True)
            time.sleep(0.001)
    """)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"programs": [{"name": "chatty", "argv": chatty}]}))
    state_file = tmp_path / "state.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.local.supervisor", str(spec), "--state-file",
         str(state_file), "--log-dir", str(tmp_path / "logs")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        while not process.stdout.readline().startswith(b"chatty"):
            pass
        pid = json.loads(state_file.read_text())["programs"]["chatty"]["pid"]
        process.stdout.close()  # the reader goes away
        log = tmp_path / "logs" / "chatty.log"
        lines_then = len(log.read_text().splitlines())
        wait_for(lambda: len(log.read_text().splitlines()) > lines_then + 100, "output drained")
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE_S) == 0
        wait_for(lambda: not alive(pid), "the program gone")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_it_waits_for_readiness_and_names_what_is_ready(tmp_path: Path) -> None:
    port = free_port()
    web = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    url = f"http://127.0.0.1:{port}/"
    with supervisor(tmp_path, [{"name": "web", "argv": web, "ready_url": url}]) as run:
        wait_for(lambda: run.state().get("state") == "ready", "the ready state")
        assert f"web ready: {url}" in run.output()
        assert run.state()["programs"]["web"]["ready"] is True
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(DEADLINE_S) == 0


def test_a_program_never_ready_fails_the_start_and_shows_its_output(tmp_path: Path) -> None:
    silent = python("""
        import time
        print("listening nowhere", flush=True)
        time.sleep(300)
    """)
    url = f"http://127.0.0.1:{free_port()}/readyz"
    programs = [{"name": "silent", "argv": silent, "ready_url": url}]
    with supervisor(tmp_path, programs, ready_deadline=1.0) as run:
        assert run.process.wait(DEADLINE_S) == 1
        state = run.state()
        assert state["state"] == "failed"
        output = run.output()
        assert "silent not ready within 1 s" in output
        assert "    listening nowhere" in output  # its last lines, to see why


def test_a_detached_stack_runs_until_down_stops_it(tmp_path: Path) -> None:
    # `make up DETACH=1` returns once everything is ready; `make down` stops all of it, even
    # what a supervisor killed outright (SIGKILL: no chance to stop its programs) left behind.
    files = RunFiles(tmp_path / "run")
    port = free_port()
    web = Program(
        name="web",
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ready_url=f"http://127.0.0.1:{port}/",
    )
    sleeper = Program(name="sleeper", argv=python("import time; time.sleep(300)"))
    timing = Timing(ready_deadline=10.0, stop_timeout=2.0)

    assert start_detached(files, [web, sleeper], timing) == 0
    first = read_state(files)
    assert first["state"] == "ready"
    pids = [first["pid"], *(first["programs"][n]["pid"] for n in ("web", "sleeper"))]
    assert all(alive(pid) for pid in pids)
    assert running_pid(files) == first["pid"]
    assert files.pid.read_text() == f"{first['pid']}\n"
    assert stop_detached(files)
    for pid in pids:
        wait_for(lambda pid=pid: not alive(pid), f"pid {pid} gone")
    assert running_pid(files) is None
    assert not files.pid.exists()

    assert start_detached(files, [web, sleeper], timing) == 0
    second = read_state(files)
    os.kill(second["pid"], signal.SIGKILL)
    wait_for(lambda: not alive(second["pid"]), "the supervisor gone")
    orphans = [second["programs"][n]["pid"] for n in ("web", "sleeper")]
    assert all(alive(pid) for pid in orphans)
    assert stop_detached(files)
    for pid in orphans:
        wait_for(lambda pid=pid: not alive(pid), f"orphan {pid} gone")
    assert not stop_detached(files)  # nothing left
