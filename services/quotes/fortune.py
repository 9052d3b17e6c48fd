"""fortune(6) files: quotes separated by lines holding a single `%`, an attribution line
(`-- Author`) at the end of a quote taken as its author."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.quotes.schemas import MAX_TEXT
from services.quotes.text import clean_text

_SEPARATOR = re.compile(r"^%[ \t]*$", re.MULTILINE)
_ATTRIBUTION = re.compile(r"\n[ \t]*(?:--|—|―)[ \t]*(?P<author>\S[^\n]{0,198})$")


@dataclass(frozen=True)
class FortuneQuote:
    text: str
    author: str | None


def parse_fortunes(content: str) -> Iterator[FortuneQuote]:
    """The quotes of a fortune file; empty entries and over-long ones are left out."""
    for chunk in _SEPARATOR.split(content):
        text = clean_text(chunk)
        author = None
        match = _ATTRIBUTION.search(text)
        if match:
            body = text[: match.start()].rstrip()
            if body:
                text, author = body, match.group("author").strip()
        if text and len(text) <= MAX_TEXT:
            yield FortuneQuote(text=text, author=author)


def fortune_files(directory: Path) -> list[Path]:
    """The fortune files of a directory like /usr/share/games/fortunes: those with a `.dat` index
    beside them (strfile's), which tells them from other files."""
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.iterdir()
        if path.is_file() and not path.suffix and path.with_suffix(".dat").exists()
    )
