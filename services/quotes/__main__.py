"""`python -m services.quotes [serve|setup|import FILE...]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.quotes.config import QuotesSettings
from services.quotes.first_run import load_debian_fortunes, open_service
from shared.cli import Command, main
from shared.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"


async def _after_migrations(settings: ServiceSettings) -> None:
    assert isinstance(settings, QuotesSettings)
    await load_debian_fortunes(settings)


def _configure_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, help="fortune(6) files")
    parser.add_argument("--source", help="stored as each quote's source")


async def _import(args: argparse.Namespace) -> int:
    settings = QuotesSettings()
    failed = 0
    async with open_service(settings) as service:
        for path in args.files:
            if not path.is_file():
                print(f"{path}: no such file", file=sys.stderr)
                failed += 1
                continue
            result = await service.import_file(path, source=args.source)
            print(f"{path}: {result.added} added, {result.skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(
        main(
            settings=QuotesSettings(),
            app_factory="services.quotes.app:create_app",
            migrations=MIGRATIONS,
            after_migrations=_after_migrations,
            commands={
                "import": Command(
                    help="import fortune(6) files (quotes separated by lines of %)",
                    run=_import,
                    configure=_configure_import,
                )
            },
        )
    )
