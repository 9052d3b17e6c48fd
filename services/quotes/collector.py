"""The collector: reads the configured sources on a schedule and stores each new quote once,
with a sighting (which source, which page, when) every time a quote is found.

Every instance runs the loop, but a run holds a PostgreSQL advisory lock and the schedule lives in
`source_status`, so one instance collects at a time and a source is read once per due time. A
failing source never stops the loop: the failure is recorded (it shows in /readyz as a
non-critical check) and the source is tried again with back-off.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx2
from selectolax.lexbor import LexborHTMLParser

from services.quotes.config import QuotesSettings, Source
from services.quotes.repository import NewQuote, QuotesRepository
from services.quotes.schemas import MAX_TEXT
from services.quotes.text import clean_text
from shared.health import CheckResult

logger = logging.getLogger(__name__)

USER_AGENT = "tinkerstack-quotes/0.1 (+collector)"
# The loop wakes for the next due source, but at least this often (new sources, other instances).
MAX_SLEEP_SECONDS = 60.0
MIN_SLEEP_SECONDS = 0.2


class SourceError(Exception):
    """The source answered, but not with quotes we can read."""


@dataclass(frozen=True)
class SourceOutcome:
    name: str
    found: int = 0
    added: int = 0
    error: str | None = None


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _quote(text: str, author: str | None, url: str) -> NewQuote | None:
    text = clean_text(text)
    if not text or len(text) > MAX_TEXT:
        return None
    author = clean_text(author)[:200] if author else None
    return NewQuote(text=text, author=author or None, source=url[:500])


def extract_html(source: Source, page: str) -> list[NewQuote]:
    assert source.selector is not None
    quotes = []
    for node in LexborHTMLParser(page).css(source.selector):
        author = None
        if source.author_selector:
            author_node = node.css_first(source.author_selector)
            if author_node is not None:
                author = _collapse(author_node.text())
                author_node.decompose()
        quote = _quote(_collapse(node.text()), author, str(source.url))
        if quote:
            quotes.append(quote)
    return quotes


def extract_json(source: Source, data: Any) -> list[NewQuote]:
    node = data
    for part in source.path.split(".") if source.path else []:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise SourceError(f"the JSON has nothing at {source.path!r} ({part!r})")
    quotes = []
    for item in node if isinstance(node, list) else [node]:
        text, author = None, None
        if isinstance(item, str):
            text = item
        elif isinstance(item, dict) and isinstance(item.get(source.text_key), str):
            text = item[source.text_key]
            found_author = item.get(source.author_key)
            author = found_author if isinstance(found_author, str) else None
        quote = _quote(text, author, str(source.url)) if text else None
        if quote:
            quotes.append(quote)
    return quotes


class Collector:
    def __init__(
        self, *, settings: QuotesSettings, repository: QuotesRepository, http: httpx2.AsyncClient
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.http = http
        self.sources = {source.name: source for source in settings.sources}

    async def fetch(self, source: Source) -> list[NewQuote]:
        accept = "application/json" if source.kind == "json" else "text/html"
        async with self.http.stream(
            "GET",
            str(source.url),
            headers={"Accept": accept, "User-Agent": USER_AGENT},
            follow_redirects=True,
        ) as response:
            if response.status_code >= 400:
                raise SourceError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.settings.source_max_bytes:
                    raise SourceError(f"the body is over {self.settings.source_max_bytes} bytes")
            encoding = response.encoding or "utf-8"
        if source.kind == "json":
            try:
                data = json.loads(bytes(body))
            except ValueError as exc:
                raise SourceError(f"the body is not JSON: {exc}") from exc
            quotes = extract_json(source, data)
        else:
            quotes = extract_html(source, bytes(body).decode(encoding, errors="replace"))
        if not quotes:
            raise SourceError("no quote found")
        return quotes

    async def collect_source(self, source: Source) -> SourceOutcome:
        try:
            quotes = await self.fetch(source)
        except Exception as exc:
            # Whatever a source sends (or fails to) is its failure, never the collector's.
            error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, SourceError) else str(exc)
            await self.repository.record_source_failure(
                name=source.name,
                error=error,
                retry_base_seconds=self.settings.source_retry_base_seconds,
                max_delay_seconds=self.settings.collect_interval_seconds,
            )
            logger.warning("source %s (%s) failed: %s", source.name, source.url, error)
            return SourceOutcome(name=source.name, error=error)
        added = await self.repository.record_sightings(
            source_name=source.name, url=str(source.url), quotes=quotes
        )
        await self.repository.record_source_success(
            name=source.name, next_in_seconds=self.settings.collect_interval_seconds
        )
        logger.info("source %s: %d quote(s), %d new", source.name, len(quotes), len(added))
        return SourceOutcome(name=source.name, found=len(quotes), added=len(added))

    async def collect_due(self) -> list[SourceOutcome] | None:
        """Collect every source that is due; None when another instance holds the run lock."""
        async with self.repository.collector_lock() as held:
            if not held:
                return None
            due = await self.repository.due_sources(names=list(self.sources))
            return [await self.collect_source(self.sources[name]) for name in due]

    async def register_sources(self) -> None:
        await self.repository.ensure_sources(
            sources=[(source.name, str(source.url)) for source in self.sources.values()]
        )

    async def run_forever(self) -> None:
        registered = False
        while True:
            try:
                if not registered:
                    await self.register_sources()
                    registered = True
                await self.collect_due()
                wait = await self.repository.seconds_until_due(names=list(self.sources))
            except Exception:
                # The database went away mid-run, or worse: log it, keep the loop alive.
                logger.exception("collector run failed")
                wait = MAX_SLEEP_SECONDS
            await asyncio.sleep(min(MAX_SLEEP_SECONDS, max(MIN_SLEEP_SECONDS, wait)))

    async def readiness(self) -> CheckResult:
        if not self.sources:
            return CheckResult(ok=True, detail="no sources configured", critical=False)
        statuses = await self.repository.source_statuses(names=list(self.sources))
        failing = [status for status in statuses if status.consecutive_failures]
        if not failing:
            return CheckResult(ok=True, detail=f"{len(self.sources)} source(s)", critical=False)
        detail = "; ".join(
            f"{s.name}: {s.consecutive_failures} failed attempt(s), last error: {s.last_error}; "
            f"next try {s.next_attempt_at.isoformat(timespec='seconds')}"
            for s in failing
        )
        return CheckResult(ok=False, detail=detail, critical=False)
