"""The quotes search page in headless Chromium: type a word, see the matching quotes with the
word highlighted; the random button shows a quote; everything reachable by keyboard."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from tests.services.quotes.helpers import add_quotes, empty_tables, running_quotes
from tests.support.stores import Stores

QUOTES = [
    "Knowledge speaks, but wisdom listens.",
    "The only true wisdom is in knowing you know nothing.",
    "A <b>bold</b> claim & nothing more.",
    "Time flies like an arrow; fruit flies like a banana.",
]


@pytest.fixture(scope="module")
async def page_url(stores: Stores) -> AsyncIterator[str]:
    async with running_quotes(stores) as base_url:
        await empty_tables(stores)
        await add_quotes(stores, QUOTES)
        yield f"{base_url}/quotes/"


@pytest.mark.browser
async def test_typing_shows_matches_with_the_word_highlighted(
    browser: Browser, page_url: str
) -> None:
    page = await browser.new_page()
    await page.goto(page_url)
    search = page.get_by_label("Search quotes")
    await search.press_sequentially("wisdom", delay=40)
    items = page.locator("#list li")
    await expect(items).to_have_count(2)
    await expect(page.locator("#status")).to_have_text("2 quotes found.")
    marks = page.locator("#list mark")
    await expect(marks).to_have_count(2)
    assert {text.lower() for text in await marks.all_inner_texts()} == {"wisdom"}
    assert "q=wisdom" in page.url

    # A word form, and markup in a quote shown as text, never as HTML.
    await search.fill("")
    await search.press_sequentially("claims", delay=40)
    await expect(items).to_have_count(1)
    await expect(items.first).to_contain_text("A <b>bold</b> claim & nothing more.")
    await expect(page.locator("#list b")).to_have_count(0)
    await expect(page.locator("#list mark")).to_have_text("claim")

    await search.press("Escape")
    await expect(items).to_have_count(0)
    await page.close()


@pytest.mark.browser
async def test_random_button_shows_a_quote_by_keyboard(browser: Browser, page_url: str) -> None:
    page = await browser.new_page()
    await page.goto(page_url)
    await page.get_by_role("button", name="Random quote").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#status")).to_have_text("A random quote.")
    items = page.locator("#list li")
    await expect(items).to_have_count(1)
    assert (await items.first.locator("blockquote").inner_text()) in QUOTES
    await page.close()


@pytest.mark.browser
async def test_results_region_is_announced(browser: Browser, page_url: str) -> None:
    page = await browser.new_page()
    await page.goto(page_url)
    assert await page.locator("#results").get_attribute("aria-live") == "polite"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "q"
    await page.close()
