"""Cleaning quote text before it is stored, and escaping it with highlights for HTML."""

from __future__ import annotations

import html
import re

# Control characters other than tab and newline: PostgreSQL refuses NUL, a page shows none of
# them, and two of them mark highlights (below), so stored text never holds any.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
# Terminal overstriking (`_\bx` underlines x, `x\bx` bolds it), found in old fortune files.
_OVERSTRIKE = re.compile(r".\x08")

# ts_headline wraps matched words in these; they cannot occur in stored text (see _CONTROL).
MARK_START = "\x02"
MARK_STOP = "\x03"
# How much of an excerpt's edge must match the quote's for it to count as the quote's own edge.
_EDGE = 20
# How much of an excerpt's edge must match the quote's for it to count as the quote's own edge.
_EDGE = 20


def clean_text(text: str) -> str:
    """Drop control characters, the carriage returns of CRLF, trailing blanks and blank edges."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", _OVERSTRIKE.sub("", text))
    return _TRAILING_SPACE.sub("", text).strip()


def highlighted_html(marked: str, text: str) -> str:
    """HTML of a ts_headline result: the text escaped first, then the marks turned into <mark>;
    an ellipsis where the excerpt cuts the quote's start or end."""
    plain = marked.replace(MARK_START, "").replace(MARK_STOP, "")
    lead = "" if text.startswith(plain[:_EDGE]) else "… "
    trail = "" if text.endswith(plain[-_EDGE:]) else " …"
    body = html.escape(marked, quote=True)
    return lead + body.replace(MARK_START, "<mark>").replace(MARK_STOP, "</mark>") + trail
