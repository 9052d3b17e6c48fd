"""First-run data: the quotes of Debian's `fortunes` package, loaded once by `setup`.

The files are not shipped with tinkerstack: their copyright file licenses the program (BSD) but
says nothing that covers the thousands of collected quotations in them, so the package is
installed instead (`apt-get install fortunes`) and read from where it puts them.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.quotes.config import QuotesSettings
from services.quotes.fortune import fortune_files
from services.quotes.repository import QuotesRepository
from services.quotes.service import QuotesService
from shared.db import create_pool

DEBIAN_FORTUNES_STEP = "debian-fortunes"


@asynccontextmanager
async def open_service(settings: QuotesSettings) -> AsyncIterator[QuotesService]:
    pool = await create_pool(str(settings.database_url), schema=settings.service_name)
    try:
        yield QuotesService(QuotesRepository(pool))
    finally:
        await pool.close()


async def load_debian_fortunes(settings: QuotesSettings) -> None:
    """Load the files once; if they are missing, say so and go on (a later setup loads them)."""
    async with open_service(settings) as service:
        repository = service.repository
        if await repository.is_done(step=DEBIAN_FORTUNES_STEP):
            print("quotes: Debian's fortunes were loaded before", file=sys.stderr)
            return
        files = fortune_files(settings.fortunes_dir)
        if not files:
            print(
                f"quotes: no fortune files in {settings.fortunes_dir}: install Debian's "
                "`fortunes` package (apt-get install fortunes) and run setup again to load "
                "them; going on without them",
                file=sys.stderr,
            )
            return
        added = skipped = 0
        for path in files:
            result = await service.import_file(path, source=f"fortunes/{path.name}")
            added, skipped = added + result.added, skipped + result.skipped
        await repository.mark_done(step=DEBIAN_FORTUNES_STEP)
        print(
            f"quotes: loaded Debian's fortunes from {len(files)} files: "
            f"{added} added, {skipped} skipped",
            file=sys.stderr,
        )
