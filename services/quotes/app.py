"""The quotes app: API, search page, and the collector running beside them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.quotes.collector import Collector
from services.quotes.config import QuotesSettings
from services.quotes.repository import QuotesRepository
from services.quotes.routes import router
from services.quotes.service import QuotesService
from shared.app import State, create_service_app
from shared.health import CheckResult
from shared.http_client import create_http_client

STATIC = Path(__file__).parent / "static"


async def _check_sources(state: Mapping[str, Any]) -> CheckResult:
    collector: Collector = state["collector"]
    return await collector.readiness()


def create_app(settings: QuotesSettings | None = None) -> FastAPI:
    settings = settings or QuotesSettings()

    @asynccontextmanager
    async def quotes_lifespan(state: State) -> AsyncIterator[State]:
        repository = QuotesRepository(state["db"], search_timeout=settings.search_timeout_seconds)
        http = create_http_client(
            proxy=settings.collector_proxy, timeout=settings.source_timeout_seconds
        )
        collector = Collector(settings=settings, repository=repository, http=http)
        task = None
        if settings.collector_enabled and settings.sources:
            task = asyncio.create_task(collector.run_forever(), name="quotes-collector")
        try:
            yield {"quotes": QuotesService(repository), "collector": collector}
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await http.aclose()

    app = create_service_app(
        settings,
        title="tinkerstack quotes",
        description="A searchable quote database: uniform random quotes, the latest ones, "
        "ranked full-text search, fortune-file import, and a collector of quotes from the web.",
        routers=[router],
        extra_lifespan=quotes_lifespan,
        readiness_checks={"sources": _check_sources},
    )
    app.mount("/quotes/static", StaticFiles(directory=STATIC), name="quotes-static")
    return app
