"""The native tests draw their inputs from bench/sort_data.py (the benchmark's distributions),
so the repository root must be importable; `uv run pytest` does not put it on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
