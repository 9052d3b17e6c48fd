"""A supervisor in the background (`make up DETACH=1`) and its end (`make down`).

Its files live in the run folder: the spec of the programs, its pid file, the state file the
supervisor keeps (its pid and state, each program's pid and command line), and its output.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.local.supervisor import Program, Timing, alive, say, stop_process

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RunFiles:
    run_dir: Path

    @property
    def state(self) -> Path:
        return self.run_dir / "stack.json"

    @property
    def pid(self) -> Path:
        return self.run_dir / "stack.pid"

    @property
    def spec(self) -> Path:
        return self.run_dir / "stack-spec.json"

    @property
    def log(self) -> Path:
        return self.run_dir / "stack.log"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"


def read_state(files: RunFiles) -> dict[str, Any]:
    try:
        data = json.loads(files.state.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def running_pid(files: RunFiles) -> int | None:
    """The pid of a supervisor that still runs, from its state file."""
    state = read_state(files)
    pid = state.get("pid")
    if state.get("state") in ("stopped", "failed") or not isinstance(pid, int):
        return None
    return pid if alive(pid) else None


def write_spec(files: RunFiles, programs: Sequence[Program], timing: Timing) -> None:
    spec = {
        "programs": [
            {
                "name": p.name,
                "argv": list(p.argv),
                "env": dict(p.env or {}),
                "cwd": p.cwd,
                "ready_url": p.ready_url,
                "url": p.url,
            }
            for p in programs
        ],
        **{name: getattr(timing, name) for name in Timing.__dataclass_fields__},
    }
    files.spec.write_text(json.dumps(spec, indent=2))


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def start_detached(files: RunFiles, programs: Sequence[Program], timing: Timing) -> int:
    """Run a supervisor in the background; wait until it says ready (0) or failed (1)."""
    files.run_dir.mkdir(parents=True, exist_ok=True)
    files.state.unlink(missing_ok=True)
    write_spec(files, programs, timing)
    with files.log.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "deploy.local.supervisor", str(files.spec),
             "--state-file", str(files.state), "--log-dir", str(files.log_dir)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    files.pid.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + timing.ready_deadline + 15
    while time.monotonic() < deadline:
        state = read_state(files)
        if process.poll() is not None or state.get("state") == "failed":
            process.wait()
            say(f"the stack did not start; its output:\n{_tail(files.log)}")
            return 1
        if state.get("state") == "ready":
            for name, program in state["programs"].items():
                say(f"{name} ready: {program['url'] or program['ready_url']}")
            say(f"running in the background (pid {process.pid}); its output: {files.log}")
            return 0
        time.sleep(0.1)
    say("the stack was not ready in time; stopping it")
    stop_process(process.pid, deadline_s=timing.stop_timeout + 10)
    return 1


def _orphans(files: RunFiles) -> dict[str, int]:
    """Programs still running from the state file's last word: their supervisor was killed
    outright, with no chance to stop them. A pid counts only while it runs the same command."""
    found = {}
    for name, program in read_state(files).get("programs", {}).items():
        pid = program.get("pid")
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except (OSError, TypeError):
            continue
        if [part.decode(errors="replace") for part in cmdline] == program.get("argv"):
            found[name] = pid
    return found


def stop_detached(files: RunFiles) -> bool:
    """Stop a background supervisor and anything it left; True when something was running."""
    pid = running_pid(files)
    if pid is not None:
        say(f"stopping the stack (pid {pid})")
        stop_process(pid)
    orphans = _orphans(files)
    for name, orphan in orphans.items():
        say(f"stopping {name} (pid {orphan}), left behind by its supervisor")
        stop_process(orphan, group=True, deadline_s=10.0)
    files.pid.unlink(missing_ok=True)
    return pid is not None or bool(orphans)
