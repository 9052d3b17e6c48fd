"""The Debian/Ubuntu packages the local stack needs: present, installed with apt (as root), or a
clear message saying what is missing and how to get it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class SetupError(RuntimeError):
    """Something the stack needs is missing; the message says what and how to get it."""


def run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command of our own (never a shell), its output as text."""
    return subprocess.run(list(argv), text=True, check=False, **kwargs)  # noqa: S603


def present(thing: str) -> bool:
    """A command on PATH, or an absolute path that exists."""
    return Path(thing).exists() if thing.startswith("/") else shutil.which(thing) is not None


def can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


_updated = False


def apt_install(packages: Sequence[str]) -> None:
    global _updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _updated:
        run(["apt-get", "update", "-q"], env=env, stdout=sys.stderr)
        _updated = True
    result = run(["apt-get", "install", "-y", "-q", *packages], env=env, stdout=sys.stderr)
    if result.returncode != 0:
        raise SetupError(f"apt-get install {' '.join(packages)} failed (exit {result.returncode})")


def ensure_present(provided_by: Mapping[str, str], *, why: str) -> list[str]:
    """Make sure each command or path (key) is present, installing its package (value) with apt
    when we can; raise SetupError saying how to get it otherwise. Returns the packages installed."""
    missing = sorted({package for thing, package in provided_by.items() if not present(thing)})
    if not missing:
        return []
    install_packages(missing, why=why)
    still = [thing for thing in provided_by if not present(thing)]
    if still:
        raise SetupError(
            f"{', '.join(still)} still missing after apt-get install {' '.join(missing)}"
        )
    return missing


def install_packages(packages: Sequence[str], *, why: str) -> None:
    """apt-get install them (as root), or raise SetupError saying how to get them."""
    names = " ".join(packages)
    if not can_install():
        raise SetupError(
            f"missing Debian package(s) {names} ({why}).\n"
            f"  Install them with: sudo apt-get install -y {names}\n"
            f"  (or run this command as root, and it installs them itself)"
        )
    print(f"installing {names} ({why})", file=sys.stderr)
    apt_install(packages)
