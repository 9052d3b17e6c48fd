"""Run a set of programs, keep them running, and stop them all together (stdlib only).

- One process per program, each in its own process group (session), so a stop reaches everything
  a program started and a terminal's Ctrl-C reaches only the supervisor, which then stops the
  programs in order: SIGTERM to each group, then SIGKILL to what is left after `stop_timeout`.
- Output is prefixed with the program's name (coloured on a terminal) and also appended, raw, to
  `<log_dir>/<name>.log`.
- A program that exits on its own is reported and restarted with exponential back-off (reset once
  it has run for `stable_after` seconds).
- Readiness: each program's `ready_url` is polled until it answers 200, with one deadline for all.
- A state file (JSON: supervisor pid, state, each program's pid and restart count) lets `make down`,
  `make up DETACH=1` and the tests see what runs.

`python -m deploy.local.supervisor SPEC.json [--state-file F] [--log-dir D]` runs the programs that
SPEC describes: {"programs": [{"name", "argv", "env"?, "cwd"?, "ready_url"?, "url"?}],
"ready_deadline"?, "stop_timeout"?, "backoff_initial"?, "backoff_max"?, "stable_after"?}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

_COLOURS = ("36", "33", "32", "35", "34", "31", "96", "93", "92", "95")
_LINE_LIMIT = 1 << 20


@dataclass(frozen=True)
class Program:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None  # added to (and overriding) the supervisor's environment
    cwd: str | None = None
    ready_url: str | None = None
    url: str | None = None  # where a person reaches it, printed once it is ready


@dataclass(frozen=True)
class Timing:
    ready_deadline: float = 60.0
    stop_timeout: float = 10.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 30.0


@dataclass
class _Running:
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    ready: bool = False
    pump: asyncio.Task[None] | None = None
    history: list[str] = field(default_factory=list)  # the last lines, shown when a start fails


async def http_status(url: str) -> int | None:
    """The status code of a GET on `url` (plain HTTP), or None when nothing answers in 2 s."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
    try:
        async with asyncio.timeout(2.0):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request.encode())
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return None
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    return int(fields[1])


def say(message: str) -> None:
    """A line of the stack's own, on stderr (programs' lines go to stdout)."""
    with contextlib.suppress(OSError, ValueError):  # its reader gone: carry on regardless
        print(f"stack | {message}", file=sys.stderr, flush=True)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie, not yet reaped, counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel, zombies included
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_process(pid: int, *, group: bool = False, deadline_s: float = 30.0) -> None:
    """SIGTERM (to its group, or to it alone: a supervisor stops its programs itself), wait for
    its end (at most the deadline), then SIGKILL to its group: whatever is left of it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + deadline_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class Supervisor:
    def __init__(
        self,
        programs: Sequence[Program],
        *,
        timing: Timing | None = None,
        out: TextIO | None = None,
        colour: bool | None = None,
        log_dir: Path | None = None,
        state_file: Path | None = None,
    ) -> None:
        if len({p.name for p in programs}) != len(programs):
            raise ValueError("program names must be unique")
        self.programs = list(programs)
        self.timing = timing or Timing()
        self.out = out or sys.stdout
        self.colour = self.out.isatty() if colour is None else colour
        self.log_dir = log_dir
        self.state_file = state_file
        self.state = "starting"
        self._running = {p.name: _Running() for p in self.programs}
        self._width = max([len("stack"), *(len(p.name) for p in self.programs)])
        self._stop = asyncio.Event()
        self._watches: set[asyncio.Task[None]] = set()
        self._out_gone = False

    # -- output ---------------------------------------------------------------------------------

    def _label(self, name: str, index: int) -> str:
        text = f"{name:<{self._width}}"
        if not self.colour:
            return text
        return f"\x1b[{_COLOURS[index % len(_COLOURS)]}m{text}\x1b[0m"

    def say(self, message: str) -> None:
        label = f"{'stack':<{self._width}}"
        if self.colour:
            label = f"\x1b[1m{label}\x1b[0m"
        self._emit(f"{label} | {message}\n")

    def _emit(self, text: str) -> None:
        """Write to the terminal or pipe, if it is still there. Its reader may be gone (a `| tee`
        stopped by the same Ctrl-C): the programs' output is still drained and logged, and the
        stop goes on."""
        if self._out_gone:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):
            self._out_gone = True

    async def _pump(self, index: int, program: Program, stream: asyncio.StreamReader) -> None:
        label = self._label(program.name, index)
        history = self._running[program.name].history
        log = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = (self.log_dir / f"{program.name}.log").open("a", encoding="utf-8")
        try:
            while True:
                try:
                    raw = await stream.readline()
                except ValueError:  # a line longer than the limit: take what is buffered
                    raw = await stream.read(_LINE_LIMIT)
                if not raw:
                    return
                line = raw.decode(errors="replace").rstrip("\r\n")
                history.append(line)
                del history[:-20]
                self._emit(f"{label} | {line}\n")
                if log is not None:
                    log.write(line + "\n")
                    log.flush()
        finally:
            if log is not None:
                log.close()

    def write_state(self) -> None:
        if self.state_file is None:
            return
        programs: dict[str, Any] = {}
        for program in self.programs:
            running = self._running[program.name]
            process = running.process
            programs[program.name] = {
                "argv": list(program.argv),
                "pid": process.pid if process and process.returncode is None else None,
                "restarts": running.restarts,
                "ready": running.ready,
                "ready_url": program.ready_url,
                "url": program.url,
            }
        data = {"pid": os.getpid(), "state": self.state, "programs": programs}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state_file)

    # -- running --------------------------------------------------------------------------------

    async def _start(self, index: int, program: Program) -> asyncio.subprocess.Process:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(program.env or {})}
        process = await asyncio.create_subprocess_exec(
            *program.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=program.cwd,
            start_new_session=True,
            limit=_LINE_LIMIT,
        )
        running = self._running[program.name]
        running.process = process
        assert process.stdout is not None
        running.pump = asyncio.create_task(self._pump(index, program, process.stdout))
        return process

    async def _keep_running(self, index: int, program: Program) -> None:
        running = self._running[program.name]
        failures = 0
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            try:
                process = await self._start(index, program)
            except OSError as exc:
                self.say(f"{program.name}: cannot start {program.argv[0]!r}: {exc}")
                code, ran = 127, 0.0
            else:
                self.write_state()
                if running.restarts and program.ready_url:
                    watch = asyncio.create_task(self._announce_ready_again(program, process))
                    self._watches.add(watch)
                    watch.add_done_callback(self._watches.discard)
                started = loop.time()
                code = await process.wait()
                ran = loop.time() - started
                # Whatever the program left behind in its group goes with it.
                kill_group(process.pid, signal.SIGKILL)
                if running.pump is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(running.pump), 2.0)
            if self._stop.is_set():
                break
            running.ready = False
            failures = 0 if ran >= self.timing.stable_after else failures + 1
            delay = min(self.timing.backoff_initial * 2 ** (failures - 1), self.timing.backoff_max)
            running.restarts += 1
            self.say(
                f"{program.name} exited with {describe_exit(code)} after {ran:.1f} s; "
                f"restart {running.restarts} in {delay:.1f} s"
            )
            self.write_state()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _announce_ready_again(
        self, program: Program, process: asyncio.subprocess.Process
    ) -> None:
        assert program.ready_url is not None
        while process.returncode is None and not self._stop.is_set():
            if await http_status(program.ready_url) == 200:
                self._running[program.name].ready = True
                self.say(f"{program.name} is ready again")
                self.write_state()
                return
            await asyncio.sleep(0.2)

    async def _wait_ready(self) -> list[str]:
        """Wait for every ready_url; return the names of the programs not ready by the deadline."""
        deadline = time.monotonic() + self.timing.ready_deadline
        waiting = [p for p in self.programs if p.ready_url]
        while waiting and time.monotonic() < deadline and not self._stop.is_set():
            statuses = await asyncio.gather(*(http_status(str(p.ready_url)) for p in waiting))
            for program, status in zip(list(waiting), statuses, strict=True):
                if status == 200:
                    self._running[program.name].ready = True
                    waiting.remove(program)
            if waiting:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 0.2)
        return [p.name for p in waiting]

    async def _stop_all(self) -> None:
        self._stop.set()
        live = {
            name: r.process
            for name, r in self._running.items()
            if r.process is not None and r.process.returncode is None
        }
        for process in live.values():
            kill_group(process.pid, signal.SIGTERM)
        waits = [asyncio.create_task(p.wait()) for p in live.values()]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=self.timing.stop_timeout)
            for name, process in live.items():
                if process.returncode is None:
                    self.say(f"{name} did not stop within {self.timing.stop_timeout:g} s: SIGKILL")
            for task in pending:
                task.cancel()
        for process in live.values():
            kill_group(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                await process.wait()

    def request_stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self.say("stopping")

    async def run(self) -> int:
        """Run until stopped (signal or `request_stop`); 1 if a program was not ready in time."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.request_stop)
        keepers = [
            asyncio.create_task(self._keep_running(i, p)) for i, p in enumerate(self.programs)
        ]
        result = 0
        try:
            not_ready = await self._wait_ready()
            if self._stop.is_set():
                pass
            elif not_ready:
                result = 1
                self.state = "failed"
                for name in not_ready:
                    tail = "\n    ".join(self._running[name].history[-10:]) or "(no output)"
                    self.say(
                        f"{name} not ready within {self.timing.ready_deadline:g} s:\n    {tail}"
                    )
                self._stop.set()
            else:
                self.state = "ready"
                self.write_state()
                for program in self.programs:
                    if program.ready_url:
                        self.say(f"{program.name} ready: {program.url or program.ready_url}")
                self.say("all ready (Ctrl-C stops everything)")
            await self._stop.wait()
        finally:
            await self._stop_all()
            for task in keepers:
                task.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            if self.state != "failed":
                self.state = "stopped"
            self.write_state()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        self.say("stopped")
        return result


def load_spec(path: Path) -> tuple[list[Program], Timing]:
    spec = json.loads(path.read_text())
    programs = [
        Program(
            name=p["name"],
            argv=list(p["argv"]),
            env=p.get("env"),
            cwd=p.get("cwd"),
            ready_url=p.get("ready_url"),
            url=p.get("url"),
        )
        for p in spec["programs"]
    ]
    timing_fields = set(Timing.__dataclass_fields__)
    timing = Timing(**{k: float(v) for k, v in spec.items() if k in timing_fields})
    return programs, timing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.supervisor")
    parser.add_argument("spec", type=Path, help="JSON file naming the programs")
    parser.add_argument("--state-file", type=Path)
    parser.add_argument("--log-dir", type=Path)
    args = parser.parse_args(argv)
    programs, timing = load_spec(args.spec)
    supervisor = Supervisor(
        programs, timing=timing, log_dir=args.log_dir, state_file=args.state_file
    )
    return asyncio.run(supervisor.run())


if __name__ == "__main__":
    sys.exit(main())
