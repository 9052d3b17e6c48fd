from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.stores import Stores, fresh_stores


@pytest.fixture(scope="session")
async def stores() -> AsyncIterator[Stores]:
    """A fresh database and namespace for this test run (shared by its tests)."""
    async with fresh_stores() as created:
        yield created
