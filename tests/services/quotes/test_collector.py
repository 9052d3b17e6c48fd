"""The collector against sources served on loopback: an HTML page read with a CSS selector, a JSON
endpoint read by a key path, and a source that fails."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from services.quotes.collector import Collector
from services.quotes.config import QuotesSettings, Source
from services.quotes.repository import QuotesRepository
from shared.db import create_pool
from shared.http_client import create_http_client
from tests.services.quotes.helpers import (
    empty_tables,
    migrate,
    quotes_settings,
    running_quotes,
)
from tests.support.servers import serve_in_process
from tests.support.stores import Stores

PAGE = """<!doctype html><html><body>
<header><p class="quote">Not this one: it is outside the footer.</p></header>
<footer>
  <div class="quote">
    <p>{text}</p>
    <span class="who">{author}</span>
  </div>
</footer>
</body></html>"""


@dataclass
class Upstream:
    """What the loopback sources answer, changeable by a test; and how often each was asked."""

    html_quote: str = "Talk is cheap.  Show me the code."
    json_quotes: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"quote": "Premature optimization is the root of all evil.", "by": "Donald Knuth"},
            {"quote": "Simplicity is prerequisite for reliability.", "by": None},
        ]
    )
    broken: bool = True
    hits: Counter[str] = field(default_factory=Counter)
    base_url: str = ""


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream()

    async def html(request: Request) -> Response:
        state.hits["html"] += 1
        return HTMLResponse(PAGE.format(text=state.html_quote, author="Linus Torvalds"))

    async def api(request: Request) -> Response:
        state.hits["json"] += 1
        return JSONResponse({"data": {"items": state.json_quotes}})

    async def flaky(request: Request) -> Response:
        state.hits["flaky"] += 1
        if state.broken:
            return Response("upstream exploded", status_code=502)
        return JSONResponse({"quote": "It works again."})

    async def ready(request: Request) -> Response:
        return Response("ok")

    app = Starlette(
        routes=[
            Route("/page", html),
            Route("/api", api),
            Route("/flaky", flaky),
            Route("/readyz", ready),
        ]
    )
    async with serve_in_process(app) as base_url:
        state.base_url = base_url
        yield state


def sources(base_url: str) -> list[Source]:
    return [
        Source(
            name="page",
            url=f"{base_url}/page",
            kind="html",
            selector="footer .quote",
            author_selector=".who",
        ),
        Source(
            name="api",
            url=f"{base_url}/api",
            kind="json",
            path="data.items",
            text_key="quote",
            author_key="by",
        ),
        Source(name="flaky", url=f"{base_url}/flaky", kind="json", path="quote"),
    ]


@dataclass
class Harness:
    collector: Collector
    pool: asyncpg.Pool
    upstream: Upstream

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.pool.fetchval(sql, *args)

    async def make_all_due(self) -> None:
        await self.pool.execute("UPDATE source_status SET next_attempt_at = now()")


@pytest.fixture
async def harness(stores: Stores, upstream: Upstream) -> AsyncIterator[Harness]:
    await migrate(stores)
    await empty_tables(stores)
    upstream.broken, upstream.hits = True, Counter()
    settings = quotes_settings(
        stores, sources=sources(upstream.base_url), source_retry_base_seconds=30
    )
    pool = await create_pool(stores.database_url, schema="quotes")
    http = create_http_client(timeout=5)
    collector = Collector(settings=settings, repository=QuotesRepository(pool), http=http)
    await collector.register_sources()
    try:
        yield Harness(collector=collector, pool=pool, upstream=upstream)
    finally:
        await http.aclose()
        await pool.close()


async def test_html_and_json_sources_are_collected(harness: Harness) -> None:
    outcomes = await harness.collector.collect_due()
    assert outcomes is not None
    by_name = {outcome.name: outcome for outcome in outcomes}
    assert (by_name["page"].found, by_name["page"].added) == (1, 1)
    assert (by_name["api"].found, by_name["api"].added) == (2, 2)
    rows = await harness.pool.fetch("SELECT text, author, source FROM quotes.quote ORDER BY text")
    assert [(row["text"], row["author"]) for row in rows] == [
        ("Premature optimization is the root of all evil.", "Donald Knuth"),
        ("Simplicity is prerequisite for reliability.", None),
        ("Talk is cheap. Show me the code.", "Linus Torvalds"),
    ]
    assert {row["source"] for row in rows} == {
        f"{harness.upstream.base_url}/page",
        f"{harness.upstream.base_url}/api",
    }


async def test_a_quote_seen_twice_is_stored_once_with_two_sightings(harness: Harness) -> None:
    await harness.collector.collect_due()
    # Not due again yet: nothing is fetched.
    assert await harness.collector.collect_due() == []
    assert harness.upstream.hits["html"] == 1

    await harness.make_all_due()
    harness.upstream.json_quotes.append({"quote": "Fresh from the API.", "by": "Someone"})
    try:
        outcomes = await harness.collector.collect_due()
    finally:
        harness.upstream.json_quotes.pop()
    assert outcomes is not None
    by_name = {outcome.name: outcome for outcome in outcomes}
    assert (by_name["page"].found, by_name["page"].added) == (1, 0)
    assert (by_name["api"].found, by_name["api"].added) == (3, 1)
    assert await harness.fetchval("SELECT count(*) FROM quotes.quote") == 4
    quote_id = await harness.fetchval(
        "SELECT id FROM quotes.quote WHERE text = 'Talk is cheap. Show me the code.'"
    )
    sightings = await harness.collector.repository.sightings(quote_id=quote_id)
    assert [(name, url) for name, url, _ in sightings] == [
        ("page", f"{harness.upstream.base_url}/page")
    ] * 2
    assert sightings[0][2] < sightings[1][2]


async def test_a_failing_source_backs_off_and_shows_in_readiness(harness: Harness) -> None:
    outcomes = await harness.collector.collect_due()
    assert outcomes is not None
    flaky = next(outcome for outcome in outcomes if outcome.name == "flaky")
    assert flaky.error == "HTTP 502"
    readiness = await harness.collector.readiness()
    assert (readiness.ok, readiness.critical) == (False, False)
    assert readiness.detail is not None
    assert "flaky: 1 failed attempt(s), last error: HTTP 502" in readiness.detail

    delay = await harness.fetchval(
        """SELECT extract(epoch FROM next_attempt_at - last_attempt_at)
           FROM quotes.source_status WHERE name = 'flaky'"""
    )
    assert 29 <= delay <= 31
    assert await harness.collector.collect_due() == []
    assert harness.upstream.hits["flaky"] == 1

    await harness.make_all_due()
    await harness.collector.collect_due()
    assert harness.upstream.hits["flaky"] == 2
    doubled = await harness.fetchval(
        """SELECT extract(epoch FROM next_attempt_at - last_attempt_at)
           FROM quotes.source_status WHERE name = 'flaky'"""
    )
    assert 59 <= doubled <= 61

    harness.upstream.broken = False
    await harness.make_all_due()
    outcomes = await harness.collector.collect_due()
    assert outcomes is not None
    recovered = next(outcome for outcome in outcomes if outcome.name == "flaky")
    assert (recovered.error, recovered.added) == (None, 1)
    assert (await harness.collector.readiness()).ok


async def test_bad_answers_are_failures_not_crashes(harness: Harness, stores: Stores) -> None:
    base = harness.upstream.base_url
    odd = [
        Source(name="no-match", url=f"{base}/page", kind="html", selector=".nothing"),
        Source(name="not-json", url=f"{base}/page", kind="json", path="a"),
        Source(name="wrong-path", url=f"{base}/api", kind="json", path="data.missing"),
        Source(name="refused", url="http://127.0.0.1:9/", kind="json"),
    ]
    collector = Collector(
        settings=quotes_settings(stores, sources=odd),
        repository=harness.collector.repository,
        http=harness.collector.http,
    )
    await collector.register_sources()
    outcomes = await collector.collect_due()
    assert outcomes is not None
    errors = {outcome.name: outcome.error for outcome in outcomes}
    assert errors["no-match"] == "no quote found"
    assert errors["not-json"] is not None
    assert errors["not-json"].startswith("the body is not JSON")
    assert errors["wrong-path"] == "the JSON has nothing at 'data.missing' ('missing')"
    assert errors["refused"] is not None
    assert errors["refused"].startswith("ConnectError")
    assert await harness.fetchval("SELECT count(*) FROM quotes.quote") == 0


async def test_one_instance_collects_at_a_time(harness: Harness) -> None:
    async with harness.collector.repository.collector_lock() as held:
        assert held
        # Another instance (its own connection) finds the lock taken and does nothing.
        assert await harness.collector.collect_due() is None
    assert sum(harness.upstream.hits.values()) == 0
    assert await harness.collector.collect_due() is not None


async def test_the_running_service_reports_a_failing_source_as_non_critical(
    stores: Stores, upstream: Upstream
) -> None:
    upstream.broken = True
    await migrate(stores)
    await empty_tables(stores)
    async with (
        running_quotes(
            stores, collector_enabled=True, sources=sources(upstream.base_url)
        ) as base_url,
        httpx2.AsyncClient(base_url=base_url) as client,
    ):
        # The round ends when every source was tried: the good one's quote is stored and the
        # broken one reported.
        deadline = time.monotonic() + 20
        while True:
            response = await client.get("/readyz")
            check = response.json()["checks"]["sources"]
            latest = (await client.get("/quotes/json/latest?count=10")).json()
            collected = {quote["text"] for quote in latest}
            round_done = not check["ok"] and "Talk is cheap. Show me the code." in collected
            if round_done or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert response.status_code == 200
        assert response.json()["status"] == "ready"
        assert check["ok"] is False
        assert check["critical"] is False
        assert "flaky" in check["detail"]
        assert "Talk is cheap. Show me the code." in collected


def test_sources_from_json_env_and_toml_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = tmp_path / "sources.toml"
    toml.write_text(
        '[[sources]]\nname = "t"\nurl = "https://example.org/q"\nkind = "html"\n'
        'selector = "#quote"\n'
    )
    env_sources = [{"name": "j", "url": "https://example.org/api", "kind": "json", "path": "q"}]
    monkeypatch.setenv("QUOTES_SOURCES", json.dumps(env_sources))
    monkeypatch.setenv("QUOTES_SOURCES_FILE", str(toml))
    settings = QuotesSettings()
    assert [(s.name, s.kind) for s in settings.sources] == [("j", "json"), ("t", "html")]
    monkeypatch.setenv("QUOTES_SOURCES", '[{"name": "x", "url": "https://e.org", "kind": "html"}]')
    monkeypatch.delenv("QUOTES_SOURCES_FILE")
    with pytest.raises(ValueError, match="needs a selector"):
        QuotesSettings()


async def test_sources_are_read_through_the_configured_proxy(stores: Stores) -> None:
    """QUOTES_PROXY_URL: the collector asks the proxy for the absolute URL (a host that only the
    proxy can reach here), and the proxy's answer is what gets stored."""
    asked: list[str] = []

    async def proxy(request: Request) -> Response:
        asked.append(f"{request.url.scheme}://{request.headers['host']}{request.url.path}")
        return JSONResponse({"quote": "Proxied wisdom is still wisdom."})

    app = Starlette(routes=[Route("/{path:path}", proxy)])
    await migrate(stores)
    await empty_tables(stores)
    async with serve_in_process(app, ready_path="/readyz") as proxy_url:
        asked.clear()
        source = Source(
            name="behind-proxy", url="http://quotes.invalid/api", kind="json", path="quote"
        )
        settings = quotes_settings(stores, sources=[source], proxy_url=proxy_url)
        assert settings.collector_proxy == proxy_url + "/"
        pool = await create_pool(stores.database_url, schema="quotes")
        http = create_http_client(proxy=settings.collector_proxy, timeout=5)
        try:
            collector = Collector(settings=settings, repository=QuotesRepository(pool), http=http)
            await collector.register_sources()
            [outcome] = await collector.collect_due() or []
            assert (outcome.error, outcome.added) == (None, 1)
            assert asked == ["http://quotes.invalid/api"]
            stored = await pool.fetchval("SELECT text FROM quotes.quote")
            assert stored == "Proxied wisdom is still wisdom."
        finally:
            await http.aclose()
            await pool.close()


def test_the_collector_proxy_falls_back_to_the_stack_wide_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("QUOTES_PROXY_URL", raising=False)
    monkeypatch.setenv("OUTBOUND_PROXY_URL", "http://outbound.example:3128")
    assert QuotesSettings().collector_proxy == "http://outbound.example:3128/"
    monkeypatch.setenv("QUOTES_PROXY_URL", "http://quotes-only.example:3128")
    assert QuotesSettings().collector_proxy == "http://quotes-only.example:3128/"
    monkeypatch.delenv("OUTBOUND_PROXY_URL")
    monkeypatch.delenv("QUOTES_PROXY_URL")
    assert QuotesSettings().collector_proxy is None
