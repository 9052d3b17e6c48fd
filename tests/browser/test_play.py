"""The games the gateway serves, in headless Chromium: Life steps a glider correctly, Snake
starts, moves under the keyboard and ends at a wall."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from tests.gateway.harness import run_gateway
from tests.support.stores import Stores
from tests.support.tokens import serve_token_issuer


@pytest.fixture(scope="module")
async def base_url(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    # The games need no service: every one of them is left undeployed.
    env = {
        f"GATEWAY_{name}_URLS": ""
        for name in ("AUTH", "QUOTES", "CHAT", "FEEDS", "IMAGING", "COMPUTE")
    }
    async with (
        serve_token_issuer() as issuer,
        run_gateway(
            stores=stores,
            jwks_url=issuer.jwks_url,
            log_dir=tmp_path_factory.mktemp("play"),
            env=env,
        ) as gateway,
    ):
        yield gateway.base_url


@pytest.mark.browser
async def test_life_steps_a_glider(browser: Browser, base_url: str) -> None:
    page = await browser.new_page()
    await page.goto(base_url + "/play/life")
    await expect(page).to_have_title("Game of Life · tinkerstack")
    status = page.get_by_role("status")
    await expect(status).to_have_text("Generation 0, 0 live cells.")
    await page.get_by_label("Pattern").select_option("glider")
    await page.get_by_role("button", name="Place pattern").click()
    await expect(status).to_have_text("Generation 0, 5 live cells.")
    for generation in range(1, 5):
        await page.get_by_role("button", name="Step").click()
        # A glider keeps its five cells at every generation.
        await expect(status).to_have_text(f"Generation {generation}, 5 live cells.")
    await page.get_by_role("button", name="Random fill").click()
    await expect(status).not_to_have_text("Generation 0, 0 live cells.")
    await page.get_by_role("button", name="Start").click()
    await expect(page.get_by_role("button", name="Stop")).to_be_visible()
    await expect(status).not_to_contain_text("Generation 0,")
    await page.get_by_role("button", name="Stop").click()
    await page.get_by_role("button", name="Clear").click()
    await expect(status).to_have_text("Generation 0, 0 live cells.")
    await page.close()


@pytest.mark.browser
async def test_snake_moves_and_ends_at_a_wall(browser: Browser, base_url: str) -> None:
    page = await browser.new_page()
    await page.goto(base_url + "/play/snake")
    status = page.get_by_role("status")
    await expect(status).to_have_text("Press Start.")
    await page.get_by_role("button", name="Start").click()
    await expect(status).to_contain_text("Score")
    # Steer up: the snake heads for the top wall and the game ends there.
    await page.keyboard.press("ArrowUp")
    await expect(status).to_contain_text("Game over", timeout=10_000)
    await page.close()
