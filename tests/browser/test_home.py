"""The home page through the real gateway in headless Chromium: every service is listed with its
health, links lead to the service pages, and the health column follows the services live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.gateway.harness import dead_url, run_gateway
from tests.gateway.upstream import create_upstream
from tests.support.servers import serve_in_process
from tests.support.stores import Stores
from tests.support.tokens import serve_token_issuer


@pytest.fixture
async def stack(stores: Stores, tmp_path: Path) -> AsyncIterator[tuple[str, AsyncExitStack]]:
    """A gateway with auth, quotes and compute up, chat up until the test stops it, feeds
    configured but down, imaging not deployed."""
    async with AsyncExitStack() as stack:
        issuer = await stack.enter_async_context(serve_token_issuer())
        service = await stack.enter_async_context(serve_in_process(create_upstream("svc")))
        chat_stack = AsyncExitStack()
        chat = await chat_stack.enter_async_context(serve_in_process(create_upstream("chat")))
        stack.push_async_callback(chat_stack.aclose)
        env = {
            "GATEWAY_AUTH_URLS": service,
            "GATEWAY_QUOTES_URLS": service,
            "GATEWAY_COMPUTE_URLS": service,
            "GATEWAY_CHAT_URLS": chat,
            "GATEWAY_FEEDS_URLS": dead_url(),
            "GATEWAY_IMAGING_URLS": "",
        }
        gateway = await stack.enter_async_context(
            run_gateway(stores=stores, jwks_url=issuer.jwks_url, log_dir=tmp_path, env=env)
        )
        yield gateway.base_url, chat_stack


@pytest.mark.browser
async def test_home_page_shows_each_services_health(
    browser: Browser, stack: tuple[str, AsyncExitStack]
) -> None:
    base_url, chat = stack
    page = await browser.new_page()
    await page.goto(base_url + "/")
    await expect(page).to_have_title("tinkerstack")
    await expect(page.get_by_role("heading", name="Services")).to_be_visible()

    table = page.get_by_role("table", name="Each service and whether it answers now")
    expected = {
        "auth": "ready",
        "quotes": "ready",
        "chat": "ready",
        "compute": "ready",
        "feeds": "down",
        "imaging": "not deployed",
    }
    for service, health in expected.items():
        row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=service))
        await expect(row.locator("td.health")).to_have_text(health)

    # The script has refreshed the column from /readyz.
    await expect(page.get_by_role("status")).to_contain_text("Health refreshed at")
    await expect(page.get_by_role("link", name="quotes")).to_have_attribute("href", "/quotes/")

    # A service that goes down is shown down without reloading the page.
    await chat.aclose()
    chat_health = (
        table.get_by_role("row")
        .filter(has=page.get_by_role("rowheader", name="chat"))
        .locator("td.health")
    )
    await expect(chat_health).to_have_text("down", timeout=20_000)
    await page.close()
