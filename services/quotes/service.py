"""The quotes domain: counts, search with spelling correction, create with dedupe, imports."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from services.quotes.fortune import parse_fortunes
from services.quotes.repository import (
    NewQuote,
    NotSearchable,
    QuoteRow,
    QuotesRepository,
    TooBroad,
)
from services.quotes.schemas import ImportResult, QuoteIn
from services.quotes.text import highlighted_html
from shared.errors import NotFound, Unprocessable

MAX_COUNT = 200
MAX_SEARCH_LIMIT = 100
MAX_SEARCH_OFFSET = 10_000
MAX_QUERY_LENGTH = 500
IMPORT_BATCH = 2_000

_WORD = re.compile(r"[^\W\d_]+")


def capped(count: int) -> int:
    """`count` as served: at most MAX_COUNT (below 1 is refused earlier, by validation)."""
    return min(count, MAX_COUNT)


@dataclass(frozen=True)
class Created:
    quote: QuoteRow
    created: bool


class SearchHit(QuoteRow):
    rank: float
    snippet: str


class SearchResult(TypedDict):
    """The body of GET /quotes/search (schemas.SearchResult documents it)."""

    total: int
    items: list[SearchHit]
    corrected: str | None


class QuotesService:
    def __init__(self, repository: QuotesRepository) -> None:
        self.repository = repository

    async def random(self, *, count: int) -> list[QuoteRow]:
        return await self.repository.random(count=capped(count))

    async def latest(self, *, count: int) -> list[QuoteRow]:
        return await self.repository.latest(count=capped(count))

    async def get(self, *, quote_id: int) -> QuoteRow:
        quote = await self.repository.get(quote_id=quote_id)
        if quote is None:
            raise NotFound(f"There is no quote {quote_id}")
        return quote

    async def delete(self, *, quote_id: int) -> None:
        if not await self.repository.delete(quote_id=quote_id):
            raise NotFound(f"There is no quote {quote_id}")

    async def create(self, *, body: QuoteIn) -> Created:
        quote, created = await self.repository.create(
            quote=NewQuote(text=body.text, author=body.author, source=body.source)
        )
        return Created(quote=quote, created=created)

    async def search(self, *, q: str, limit: int, offset: int) -> SearchResult:
        query = " ".join(q.split())
        if not query:
            raise Unprocessable("q: the search query is empty")
        result = await self._search(query, limit, offset)
        if result["total"] or offset:
            return result
        corrected = await self._corrected(query)
        if corrected is None:
            return result
        retried = await self._search(corrected, limit, offset)
        return {**retried, "corrected": corrected} if retried["total"] else result

    async def _search(self, query: str, limit: int, offset: int) -> SearchResult:
        try:
            page = await self.repository.search(query=query, limit=limit, offset=offset)
        except NotSearchable as exc:
            raise Unprocessable(
                "q: the query only leaves words out; add a word to look for"
            ) from exc
        except TooBroad as exc:
            raise Unprocessable("q: the query matches too many quotes to rank; narrow it") from exc
        return {
            "total": page.total,
            "items": [
                {
                    **row.quote,
                    "rank": row.rank,
                    "snippet": highlighted_html(row.marked, row.quote["text"]),
                }
                for row in page.rows
            ],
            "corrected": None,
        }

    async def _corrected(self, query: str) -> str | None:
        """The query with its unknown words replaced by the closest known ones, if any changed."""
        words = {word.lower() for word in _WORD.findall(query) if 3 <= len(word) <= 40}
        if not words:
            return None
        fixes = await self.repository.corrections(words=sorted(words))
        if not fixes:
            return None
        return _WORD.sub(lambda m: fixes.get(m.group(0).lower(), m.group(0)), query)

    async def import_fortunes(self, *, content: str, source: str | None = None) -> ImportResult:
        quotes = [
            NewQuote(text=q.text, author=q.author, source=source) for q in parse_fortunes(content)
        ]
        return await self.import_quotes(quotes)

    async def import_quotes(self, quotes: Iterable[NewQuote]) -> ImportResult:
        batch: list[NewQuote] = []
        found = added = 0
        for quote in quotes:
            batch.append(quote)
            found += 1
            if len(batch) >= IMPORT_BATCH:
                added += len(await self.repository.insert_many(quotes=batch))
                batch = []
        if batch:
            added += len(await self.repository.insert_many(quotes=batch))
        return ImportResult(added=added, skipped=found - added)

    async def import_file(self, path: Path, *, source: str | None = None) -> ImportResult:
        content = await asyncio.to_thread(path.read_text, encoding="utf-8", errors="replace")
        return await self.import_fortunes(content=content, source=source)
