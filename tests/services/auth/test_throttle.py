"""Login throttling: repeated failures for one user name or from one address get 429 with
Retry-After (the test settings allow 3 per name and 6 per address in a 600 s window)."""

from __future__ import annotations

import asyncio

import httpx2

from tests.services.auth.conftest import (
    AuthServer,
    assert_problem,
    new_address,
    new_username,
    register,
)

PASSWORD = "the right one"


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _login_from(
    client: httpx2.AsyncClient, address: str, username: str, password: str
) -> httpx2.Response:
    return await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
        headers=_from(address),
    )


def _assert_throttled(response: httpx2.Response, window: int) -> None:
    assert_problem(response, 429)
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= window
    assert "access_token" not in response.text


async def test_failures_for_one_name_lock_that_name_from_any_address(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    limit = auth_server.settings.throttle_username_failures
    window = auth_server.settings.throttle_window_seconds
    username = new_username()
    await register(client, username, PASSWORD)
    for _ in range(limit):
        assert_problem(await _login_from(client, new_address(), username, "wrong guess"), 401)

    # Even the right password is refused now, from a fresh address too.
    response = await _login_from(client, new_address(), username, PASSWORD)
    _assert_throttled(response, window)
    # Other names are unaffected.
    other = new_username()
    await register(client, other, PASSWORD)
    assert (await _login_from(client, new_address(), other, PASSWORD)).status_code == 200


async def test_unknown_names_are_throttled_like_known_ones(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    limit = auth_server.settings.throttle_username_failures
    username = new_username("ghost")
    for _ in range(limit):
        assert_problem(await _login_from(client, new_address(), username, "guess"), 401)
    response = await _login_from(client, new_address(), username, "guess")
    _assert_throttled(response, auth_server.settings.throttle_window_seconds)


async def test_a_successful_login_resets_the_name_counter(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    limit = auth_server.settings.throttle_username_failures
    username = new_username()
    await register(client, username, PASSWORD)
    for _ in range(2):
        for _ in range(limit - 1):
            assert_problem(await _login_from(client, new_address(), username, "typo"), 401)
        assert (await _login_from(client, new_address(), username, PASSWORD)).status_code == 200


async def test_failures_from_one_address_lock_that_address(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    limit = auth_server.settings.throttle_ip_failures
    address = new_address()
    username = new_username()
    await register(client, username, PASSWORD)
    # Spraying guesses over many names stays under each name's limit, not the address's (the
    # address is the client's, from the gateway's X-Forwarded-For, so one client locked out does
    # not lock out everyone behind the gateway).
    for _ in range(limit):
        response = await _login_from(client, address, new_username("spray"), "guess")
        assert_problem(response, 401)

    response = await _login_from(client, address, username, PASSWORD)
    _assert_throttled(response, auth_server.settings.throttle_window_seconds)
    # The same user from elsewhere is fine.
    assert (await _login_from(client, new_address(), username, PASSWORD)).status_code == 200


async def test_successful_logins_do_not_use_up_the_address_limit(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    address = new_address()
    username = new_username()
    await register(client, username, PASSWORD)
    for _ in range(auth_server.settings.throttle_ip_failures + 2):
        assert (await _login_from(client, address, username, PASSWORD)).status_code == 200


async def test_a_burst_of_concurrent_guesses_cannot_pass_the_limit(
    client: httpx2.AsyncClient, auth_server: AuthServer
) -> None:
    limit = auth_server.settings.throttle_username_failures
    username = new_username()
    await register(client, username, PASSWORD)
    responses = await asyncio.gather(
        *(_login_from(client, new_address(), username, f"guess {i}") for i in range(limit + 7))
    )
    statuses = [r.status_code for r in responses]
    # Only `limit` guesses were checked at all; the rest were refused before hashing.
    assert statuses.count(401) == limit
    assert statuses.count(429) == 7
