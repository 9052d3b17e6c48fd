"""All SQL of the quotes service.

Writers of `quote` take the row lock of `quote_counter` first, so `seq` stays dense (1..last_seq):
inserts number their rows after the last one, a delete moves the last quote into the hole. A
uniform draw of distinct quotes is then a uniform draw of distinct integers, fetched by the unique
index on `seq` — no scan, whatever the table's size.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.quotes.text import MARK_START, MARK_STOP

_QUOTE_COLUMNS = "id, text, author, source, added_at"

# Inserts the quotes of the batch that are new (neither present nor repeated earlier in the batch),
# numbered after $4, the last seq; returns them. Runs under the counter's row lock, so the NOT
# EXISTS test sees every committed quote; ON CONFLICT still guards the unique key.
_INSERT_NEW = f"""
WITH input AS (
    SELECT t.text, t.author, t.source, t.ord, quote_text_hash(t.text) AS text_hash
    FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(text, author, source, ord)
), fresh AS (
    SELECT DISTINCT ON (input.text_hash) input.*
    FROM input
    WHERE NOT EXISTS (SELECT 1 FROM quote WHERE quote.text_hash = input.text_hash)
    ORDER BY input.text_hash, input.ord
), numbered AS (
    SELECT fresh.*, row_number() OVER (ORDER BY fresh.ord) AS n FROM fresh
)
INSERT INTO quote (seq, text, author, source)
SELECT $4 + numbered.n, numbered.text, numbered.author, numbered.source
FROM numbered ORDER BY numbered.n
ON CONFLICT (text_hash) DO NOTHING
RETURNING seq, {_QUOTE_COLUMNS}
"""  # noqa: S608 (constant column list)

# What a query is: its tsquery (as text), its number of nodes (0: only stop words; 1: one word),
# and whether an index can serve it ('T' when it only excludes words, like "-love").
_PARSE = """
SELECT q::text AS query, numnode(q) AS nodes, querytree(q) <> 'T' AS indexable
FROM websearch_to_tsquery('english', $1) AS q
"""

# The headline of a quote for query $Q: a short quote whole, a long one by its best fragments.
_HEADLINE = """ts_headline('english', quote.text, {query},
                   CASE WHEN char_length(quote.text) <= $4 THEN $5 ELSE $6 END) AS marked"""

# Any query: every match ranked (ts_rank, plus 1 when the quote holds the words as a phrase, in
# order), counted in the same pass. Cost grows with the number of matches.
_SEARCH_ANY = f"""
WITH query AS (
    SELECT websearch_to_tsquery('english', $1) AS q, phraseto_tsquery('english', $1) AS phrase
), ranked AS (
    SELECT quote.id,
           ts_rank(quote.search, query.q)::float8
             + CASE WHEN quote.search @@ query.phrase THEN 1 ELSE 0 END AS rank,
           count(*) OVER () AS total
    FROM quote, query
    WHERE quote.search @@ query.q
    ORDER BY rank DESC, quote.id DESC
    LIMIT $2 OFFSET $3
)
SELECT {_QUOTE_COLUMNS.replace("id,", "quote.id,")}, ranked.rank, ranked.total,
       {_HEADLINE.format(query="query.q")}
FROM ranked JOIN quote USING (id), query
ORDER BY ranked.rank DESC, ranked.id DESC
"""  # noqa: S608 (constant column list)

# One word: its best quotes are the first entries of its range of quote_term (same order and
# rank as _SEARCH_ANY: a one-word query is its own phrase), its count one row of term_stat.
_SEARCH_ONE_WORD = f"""
WITH top AS (
    SELECT quote_id, score FROM quote_term
    WHERE lexeme = $1
    ORDER BY score DESC, quote_id DESC
    LIMIT $2 OFFSET $3
)
SELECT {_QUOTE_COLUMNS.replace("id,", "quote.id,")}, top.score::float8 + 1 AS rank,
       {_HEADLINE.format(query="lexeme_query($1)")}
FROM top JOIN quote ON quote.id = top.quote_id
ORDER BY top.score DESC, top.quote_id DESC
"""  # noqa: S608 (constant column list)

# Matched words between MARK_START and MARK_STOP, which stored text never holds (text.py).
_MARKS = f'StartSel="{MARK_START}", StopSel="{MARK_STOP}"'
_HEADLINE_WHOLE = f"{_MARKS}, HighlightAll=true"
_HEADLINE_FRAGMENTS = f'{_MARKS}, MaxWords=60, MinWords=25, MaxFragments=3, FragmentDelimiter=" … "'
_WHOLE_UP_TO_CHARS = 600
_TSQUERY_ESCAPE = re.compile(r"''|\\\\")

# For each query word that is no word of any quote: the most similar word that is.
_CORRECTIONS = """
SELECT w.input,
       (SELECT v.word FROM quote_word v
        WHERE v.word % w.input
        ORDER BY similarity(v.word, w.input) DESC, v.word
        LIMIT 1) AS word
FROM unnest($1::text[]) AS w(input)
WHERE NOT EXISTS (SELECT 1 FROM quote_word v WHERE v.word = w.input)
"""

# The collector's run lock: one instance collects at a time.
_COLLECTOR_LOCK = "quotes:collector"

# Uniform draws $1 (floats in [0, 1)) mapped onto 1..last_seq; the first $2 distinct numbers, in
# draw order, with their quotes (a NULL quote where a number is free); and last_seq itself.
_RANDOM = f"""
WITH counter AS (
    SELECT last_seq FROM quote_counter
), draws AS (
    SELECT 1 + floor(d.u * counter.last_seq)::int AS seq, d.ord
    FROM counter, unnest($1::float8[]) WITH ORDINALITY AS d(u, ord)
), firsts AS (
    SELECT seq, min(ord) AS ord FROM draws GROUP BY seq ORDER BY min(ord) LIMIT $2
)
SELECT firsts.seq, counter.last_seq, {_QUOTE_COLUMNS.replace("id,", "quote.id,")}
FROM firsts CROSS JOIN counter LEFT JOIN quote ON quote.seq = firsts.seq
ORDER BY firsts.ord
"""  # noqa: S608 (constant column list)
_BY_SEQ = f"SELECT seq, {_QUOTE_COLUMNS} FROM quote WHERE seq = ANY($1::int[])"  # noqa: S608
# Draws beyond `count` (plus a quarter): enough that duplicates, or numbers freed by a delete,
# almost never leave the first statement short on a large table.
_EXTRA_DRAWS = 8
# Further rounds run only when concurrent deletes keep freeing the numbers drawn.
_RANDOM_ROUNDS = 4
# Uniformity is what matters here, not unpredictability: the Mersenne Twister, seeded from the OS.
_rng = random.Random()  # noqa: S311


class QuoteRow(TypedDict):
    """A stored quote, as the API shows it (schemas.Quote documents it)."""

    id: int
    text: str
    author: str | None
    source: str | None
    added_at: datetime


@dataclass(frozen=True)
class NewQuote:
    text: str
    author: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class SearchRow:
    quote: QuoteRow
    rank: float
    marked: str


@dataclass(frozen=True)
class SearchPage:
    total: int
    rows: list[SearchRow]


@dataclass(frozen=True)
class SourceStatus:
    name: str
    url: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    next_attempt_at: datetime


def _quote(row: asyncpg.Record) -> QuoteRow:
    return {
        "id": row["id"],
        "text": row["text"],
        "author": row["author"],
        "source": row["source"],
        "added_at": row["added_at"],
    }


class NotSearchable(ValueError):
    """A query that only excludes words ("-love"): no index can find its matches."""


class TooBroad(ValueError):
    """A query of several words whose matches are too many to rank in time ("a or b or c ...")."""


def _single_lexeme(tsquery: str) -> str | None:
    """The lexeme of a one-operand tsquery's text (`'it''s'` → `it's`), or None."""
    if len(tsquery) < 2 or tsquery[0] != "'" or tsquery[-1] != "'":
        return None
    return _TSQUERY_ESCAPE.sub(lambda m: m.group(0)[0], tsquery[1:-1])


def _page(total: int, rows: list[asyncpg.Record]) -> SearchPage:
    return SearchPage(
        total=total,
        rows=[
            SearchRow(quote=_quote(row), rank=float(row["rank"]), marked=row["marked"])
            for row in rows
        ],
    )


def draw_distinct(last: int, count: int, exclude: set[int]) -> list[int]:
    """`count` distinct integers of 1..last outside `exclude`, uniformly, in random order."""
    available = last - len(exclude)
    if available <= 0:
        return []
    count = min(count, available)
    if count * 4 >= available:
        # A large share of the range: sample from the explicit list (exact, no retries).
        candidates = [n for n in range(1, last + 1) if n not in exclude]
        return _rng.sample(candidates, count)
    drawn: list[int] = []
    seen = set(exclude)
    while len(drawn) < count:
        n = _rng.randint(1, last)
        if n not in seen:
            seen.add(n)
            drawn.append(n)
    return drawn


class QuotesRepository:
    def __init__(self, pool: asyncpg.Pool, *, search_timeout: float = 5.0) -> None:
        self.pool = pool
        # A query of several very common words joined by `or` can match most quotes, and ranking
        # them all takes seconds at a million rows: past this, asyncpg cancels the query.
        self.search_timeout = search_timeout

    async def get(self, *, quote_id: int) -> QuoteRow | None:
        row = await self.pool.fetchrow(
            f"SELECT {_QUOTE_COLUMNS} FROM quote WHERE id = $1",  # noqa: S608
            quote_id,
        )
        return _quote(row) if row else None

    async def count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM quote"))

    async def latest(self, *, count: int) -> list[QuoteRow]:
        rows = await self.pool.fetch(
            f"SELECT {_QUOTE_COLUMNS} FROM quote ORDER BY added_at DESC, id DESC LIMIT $1",  # noqa: S608
            count,
        )
        return [_quote(row) for row in rows]

    async def random(self, *, count: int) -> list[QuoteRow]:
        """`min(count, total)` distinct quotes, each set of them equally likely, in random order.

        One statement in the usual case: uniform draws of 1..last_seq, the first `count` distinct
        ones that hold a quote kept. When those fall short (a table not much larger than
        `count`, or seqs freed by a concurrent delete), the rest is drawn among the numbers not
        tried yet: the process treats every quote alike, so every set of quotes stays equally
        likely.
        """
        draws = [_rng.random() for _ in range(count + _EXTRA_DRAWS + count // 4)]
        async with self.pool.acquire() as conn:
            # Every distinct draw comes back, not just the first `count`: those that land on a
            # free number are made up for by the next ones, in draw order (still uniform).
            rows = await conn.fetch(_RANDOM, draws, len(draws))
            last = rows[0]["last_seq"]
            found = [row for row in rows if row["id"] is not None][: min(count, last)]
            tried = {row["seq"] for row in rows}
            for _ in range(_RANDOM_ROUNDS):
                wanted = min(count, last) - len(found)
                # Extra numbers here too, for free ones; the first found, in draw order, count.
                seqs = draw_distinct(last, wanted + _EXTRA_DRAWS, tried) if wanted > 0 else []
                if not seqs:
                    break
                tried.update(seqs)
                more = await conn.fetch(_BY_SEQ, seqs)
                by_seq = {row["seq"]: row for row in more}
                # A delete between two statements may have moved a quote already found.
                ids = {row["id"] for row in found}
                fresh = [by_seq[s] for s in seqs if s in by_seq and by_seq[s]["id"] not in ids]
                found += fresh[:wanted]
                last = await conn.fetchval("SELECT last_seq FROM quote_counter")
        return [_quote(row) for row in found]

    async def insert(
        self,
        conn: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record],
        *,
        quotes: Sequence[NewQuote],
    ) -> list[QuoteRow]:
        """Store the quotes that are new; return those stored. Call inside a transaction."""
        if not quotes:
            return []
        last = await conn.fetchval("SELECT last_seq FROM quote_counter FOR UPDATE")
        rows = await conn.fetch(
            _INSERT_NEW,
            [q.text for q in quotes],
            [q.author for q in quotes],
            [q.source for q in quotes],
            last,
        )
        if rows:
            await conn.execute(
                "UPDATE quote_counter SET last_seq = $1", max(row["seq"] for row in rows)
            )
        return [_quote(row) for row in rows]

    async def insert_many(self, *, quotes: Sequence[NewQuote]) -> list[QuoteRow]:
        async with self.pool.acquire() as conn, conn.transaction():
            return await self.insert(conn, quotes=quotes)

    async def create(self, *, quote: NewQuote) -> tuple[QuoteRow, bool]:
        """The new quote and True, or the quote already holding that text and False."""
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await self.insert(conn, quotes=[quote])
            if inserted:
                return inserted[0], True
            row = await conn.fetchrow(
                f"SELECT {_QUOTE_COLUMNS} FROM quote WHERE text_hash = quote_text_hash($1)",  # noqa: S608
                quote.text,
            )
            assert row is not None  # present: the insert was skipped for it, under the lock
            return _quote(row), False

    async def delete(self, *, quote_id: int) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            last = await conn.fetchval("SELECT last_seq FROM quote_counter FOR UPDATE")
            seq = await conn.fetchval("DELETE FROM quote WHERE id = $1 RETURNING seq", quote_id)
            if seq is None:
                return False
            # Keep 1..last dense: the last quote takes the freed number.
            await conn.execute("UPDATE quote SET seq = $1 WHERE seq = $2", seq, last)
            await conn.execute("UPDATE quote_counter SET last_seq = $1", last - 1)
            return True

    async def search(self, *, query: str, limit: int, offset: int) -> SearchPage:
        parsed = await self.pool.fetchrow(_PARSE, query)
        assert parsed is not None
        if parsed["nodes"] == 0:
            return SearchPage(total=0, rows=[])
        if not parsed["indexable"]:
            raise NotSearchable(query)
        headline = (_WHOLE_UP_TO_CHARS, _HEADLINE_WHOLE, _HEADLINE_FRAGMENTS)
        lexeme = _single_lexeme(parsed["query"]) if parsed["nodes"] == 1 else None
        if lexeme is not None:
            total = await self.pool.fetchval(
                "SELECT quotes FROM term_stat WHERE lexeme = $1", lexeme
            )
            rows = await self.pool.fetch(_SEARCH_ONE_WORD, lexeme, limit, offset, *headline)
            return _page(int(total or 0), rows)
        try:
            rows = await self.pool.fetch(
                _SEARCH_ANY, query, limit, offset, *headline, timeout=self.search_timeout
            )
        except TimeoutError as exc:
            raise TooBroad(query) from exc
        if rows:
            total = int(rows[0]["total"])
        elif offset > 0:
            total = await self.count_matches(query=query)
        else:
            total = 0
        return _page(total, rows)

    async def count_matches(self, *, query: str) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM quote WHERE search @@ websearch_to_tsquery('english', $1)",
                query,
            )
        )

    async def corrections(self, *, words: Sequence[str]) -> dict[str, str]:
        """For the words that occur in no quote: the closest word that does (if any is close)."""
        rows = await self.pool.fetch(_CORRECTIONS, list(words))
        return {row["input"]: row["word"] for row in rows if row["word"]}

    async def record_sightings(
        self, *, source_name: str, url: str, quotes: Sequence[NewQuote]
    ) -> list[QuoteRow]:
        """Store the new quotes and a sighting of every quote found; return the new ones."""
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await self.insert(conn, quotes=quotes)
            await conn.execute(
                """INSERT INTO sighting (quote_id, source_name, url)
                   SELECT quote.id, $2, $3 FROM quote
                   WHERE quote.text_hash IN
                       (SELECT quote_text_hash(t) FROM unnest($1::text[]) AS t)""",
                [q.text for q in quotes],
                source_name,
                url,
            )
            return inserted

    async def sightings(self, *, quote_id: int) -> list[tuple[str, str, datetime]]:
        rows = await self.pool.fetch(
            "SELECT source_name, url, seen_at FROM sighting WHERE quote_id = $1 ORDER BY seen_at",
            quote_id,
        )
        return [(row["source_name"], row["url"], row["seen_at"]) for row in rows]

    async def ensure_sources(self, *, sources: Sequence[tuple[str, str]]) -> None:
        await self.pool.executemany(
            """INSERT INTO source_status (name, url) VALUES ($1, $2)
               ON CONFLICT (name) DO UPDATE SET url = excluded.url
               WHERE source_status.url <> excluded.url""",
            list(sources),
        )

    async def source_statuses(self, *, names: Sequence[str]) -> list[SourceStatus]:
        rows = await self.pool.fetch(
            "SELECT * FROM source_status WHERE name = ANY($1::text[]) ORDER BY name", list(names)
        )
        return [SourceStatus(**dict(row)) for row in rows]

    async def due_sources(self, *, names: Sequence[str]) -> list[str]:
        rows = await self.pool.fetch(
            """SELECT name FROM source_status
               WHERE name = ANY($1::text[]) AND next_attempt_at <= now() ORDER BY name""",
            list(names),
        )
        return [row["name"] for row in rows]

    async def seconds_until_due(self, *, names: Sequence[str]) -> float:
        """Seconds until the next source is due (0 if one is; large when there are none)."""
        wait = await self.pool.fetchval(
            """SELECT extract(epoch FROM min(next_attempt_at) - now())::float8
               FROM source_status WHERE name = ANY($1::text[])""",
            list(names),
        )
        return 3600.0 if wait is None else max(0.0, float(wait))

    async def record_source_success(self, *, name: str, next_in_seconds: float) -> None:
        await self.pool.execute(
            """UPDATE source_status SET last_attempt_at = now(), last_success_at = now(),
                   consecutive_failures = 0, last_error = NULL,
                   next_attempt_at = now() + make_interval(secs => $2)
               WHERE name = $1""",
            name,
            next_in_seconds,
        )

    async def record_source_failure(
        self, *, name: str, error: str, retry_base_seconds: float, max_delay_seconds: float
    ) -> None:
        # Back-off: base, 2 × base, 4 × base ... after consecutive failures, at most max_delay.
        await self.pool.execute(
            """UPDATE source_status SET last_attempt_at = now(),
                   consecutive_failures = consecutive_failures + 1, last_error = $2,
                   next_attempt_at = now() + make_interval(secs => least(
                       $4::float8, $3::float8 * 2 ^ least(consecutive_failures, 30)))
               WHERE name = $1""",
            name,
            error[:500],
            retry_base_seconds,
            max_delay_seconds,
        )

    async def mark_done(self, *, step: str) -> bool:
        """Record a one-time step; False if it was recorded already."""
        status = await self.pool.execute(
            "INSERT INTO first_run_step (name) VALUES ($1) ON CONFLICT DO NOTHING", step
        )
        return status.endswith(" 1")

    async def is_done(self, *, step: str) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM first_run_step WHERE name = $1)", step
            )
        )

    @asynccontextmanager
    async def collector_lock(self) -> AsyncIterator[bool]:
        """Try the collector's advisory lock; yield whether this instance holds it."""
        async with self.pool.acquire() as conn:
            held = await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", _COLLECTOR_LOCK)
            try:
                yield bool(held)
            finally:
                if held:
                    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", _COLLECTOR_LOCK)
