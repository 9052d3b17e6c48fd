"""Write one benchmark's figures into docs/BENCHMARKS.md.

Each benchmark owns a section between two markers, so benchmarks can run alone (or in any order)
and only replace their own figures.
"""

from __future__ import annotations

import platform
import re
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"

_HEADER = """# Benchmarks

Figures written by `make bench` (each benchmark replaces its own section). The machines are shared
and noisy, so every figure that matters is a ratio against a baseline measured in the same run.
"""


def machine_line() -> str:
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"Python {platform.python_version()}, {platform.processor() or 'cpu'}"
    )


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) the section `name` of docs/BENCHMARKS.md with `markdown`."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n{markdown.rstrip()}\n\n_Measured {machine_line()}._\n{end}"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else _HEADER
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS_MD.write_text(text)
