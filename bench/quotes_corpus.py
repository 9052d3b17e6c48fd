"""A large quote table for the quotes benchmark, built from Debian's fortunes.

The fortunes hold about 15,000 quotes; a million distinct ones are made by a word-level Markov
chain trained on them (so word frequencies, and thus search selectivity, look like the real thing),
with lengths drawn from the real quotes. The build is deterministic (seeded) and resumable: a
database that already holds enough rows is reused.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from services.quotes.fortune import FortuneQuote, fortune_files, parse_fortunes
from services.quotes.repository import NewQuote, QuotesRepository
from shared.db import create_pool
from shared.migrations import apply_migrations

FORTUNES = Path("/usr/share/games/fortunes")
MIGRATIONS = Path(__file__).resolve().parent.parent / "services" / "quotes" / "migrations"
BATCH = 20_000
MAX_WORDS = 80


def load_fortunes() -> list[FortuneQuote]:
    files = fortune_files(FORTUNES)
    if not files:
        sys.exit(f"no fortune files in {FORTUNES}: apt-get install fortunes")
    return [q for path in files for q in parse_fortunes(path.read_text(errors="replace"))]


class MarkovText:
    def __init__(self, corpus: list[FortuneQuote], seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_words: dict[str, list[str]] = defaultdict(list)
        self.starts: list[str] = []
        self.lengths: list[int] = []
        self.authors = [q.author for q in corpus if q.author] + [None] * (len(corpus) // 2)
        for quote in corpus:
            words = quote.text.split()
            if not words:
                continue
            self.starts.append(words[0])
            self.lengths.append(min(len(words), MAX_WORDS))
            for current, following in itertools.pairwise(words):
                self.next_words[current].append(following)

    def text(self) -> str:
        length = self.rng.choice(self.lengths)
        word = self.rng.choice(self.starts)
        words = [word]
        while len(words) < length:
            options = self.next_words.get(word)
            word = self.rng.choice(options) if options else self.rng.choice(self.starts)
            words.append(word)
        return " ".join(words)

    def quotes(self) -> Iterator[NewQuote]:
        while True:
            yield NewQuote(text=self.text(), author=self.rng.choice(self.authors))


async def ensure_database(server_url: str, name: str) -> str:
    admin = await asyncpg.connect(server_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


async def build(database_url: str, rows: int, *, seed: int = 6) -> int:
    """Fill the quotes table up to `rows` quotes (the real fortunes first); return the count."""
    await apply_migrations(database_url, schema="quotes", directory=MIGRATIONS)
    pool = await create_pool(database_url, schema="quotes", max_size=2)
    try:
        repository = QuotesRepository(pool)
        have = await repository.count()
        if have >= rows:
            return have
        corpus = load_fortunes()
        started = time.perf_counter()
        if have == 0:
            real = [NewQuote(text=q.text, author=q.author, source="fortunes") for q in corpus]
            have += len(await repository.insert_many(quotes=real[:rows]))
        generated = MarkovText(corpus, seed + have).quotes()
        while have < rows:
            batch = [next(generated) for _ in range(min(BATCH, rows - have))]
            have += len(await repository.insert_many(quotes=batch))
            print(
                f"  {have:,} quotes ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        async with pool.acquire() as conn:
            await conn.execute("VACUUM ANALYZE quote")
            await conn.execute("VACUUM ANALYZE quote_word")
        return have
    finally:
        await pool.close()
