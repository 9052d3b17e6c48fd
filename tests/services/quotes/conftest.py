from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from tests.services.quotes.helpers import empty_tables, running_quotes
from tests.support.stores import Stores
from tests.support.tokens import TokenIssuer, serve_token_issuer

IMPORT_MAX_BYTES = 64_000


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[TokenIssuer]:
    async with serve_token_issuer() as running:
        yield running


@pytest.fixture(scope="module")
async def quotes_url(stores: Stores, issuer: TokenIssuer) -> AsyncIterator[str]:
    async with running_quotes(
        stores, jwks_url=issuer.jwks_url, import_max_bytes=IMPORT_MAX_BYTES
    ) as base_url:
        yield base_url


@pytest.fixture
async def client(quotes_url: str, stores: Stores) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of the running service, whose tables start empty."""
    await empty_tables(stores)
    async with httpx2.AsyncClient(base_url=quotes_url, timeout=10) as http:
        yield http


@pytest.fixture
def token(issuer: TokenIssuer) -> str:
    return issuer.issue(sub="7", name="alice")


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
