"""Generated bad input for every endpoint that takes a body: whatever arrives, the answer is a
documented status, errors are problem+json, and nothing is ever a 500.

The service runs as its own process here, because these tests are synchronous (Hypothesis drives
them) and would otherwise block the event loop that serves the in-process app."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.services.auth.conftest import AuthServer
from tests.support.servers import ServiceProcess, free_port

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
field_values = json_scalars | st.text(alphabet="abcxyz019_.-", min_size=0, max_size=40)
user_bodies = json_values | st.dictionaries(
    st.sampled_from(["username", "password", "roles"]), field_values
)
revoke_bodies = json_values | st.dictionaries(
    st.sampled_from(["token", "token_type_hint", "extra"]), field_values
)
form_fields = st.dictionaries(
    st.sampled_from(["grant_type", "username", "password", "refresh_token", "scope"]),
    st.sampled_from(["password", "refresh_token", "client_credentials", ""]) | st.text(max_size=40),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "application/json; charset=latin-1",
        "",
    ]
)


@pytest.fixture(scope="module")
def base_url(auth_server: AuthServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        **auth_server.env,
        "AUTH_PORT": str(port),
        # Throttling would answer most generated logins with 429 and test nothing else.
        "AUTH_THROTTLE_USERNAME_FAILURES": "1000000",
        "AUTH_THROTTLE_IP_FAILURES": "1000000",
    }
    log_path: Path = tmp_path_factory.mktemp("fuzz") / "auth.log"
    process = ServiceProcess("services.auth", env=env, log_path=log_path)
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url
    finally:
        process.stop()


def _wait_ready(url: str, process: ServiceProcess, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"auth not ready after {deadline_s} s:\n{process.log()[-3000:]}")


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=base_url, timeout=10.0) as client:
        yield client


def _post_json(http: httpx2.Client, path: str, body: Any) -> httpx2.Response:
    # Explicitly, so that even `null` goes out as a JSON body (httpx sends nothing for json=None).
    return http.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})


def _check(response: httpx2.Response, allowed: set[int]) -> None:
    assert response.status_code in allowed, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == response.status_code


@FUZZ
@given(body=user_bodies)
def test_create_user_with_generated_json(http: httpx2.Client, body: Any) -> None:
    _check(_post_json(http, "/auth/users", body), {201, 409, 422})


@FUZZ
@given(fields=form_fields)
def test_token_with_generated_forms(http: httpx2.Client, fields: dict[str, str]) -> None:
    _check(http.post("/auth/token", data=fields), {400, 401})


@FUZZ
@given(body=revoke_bodies)
def test_revoke_with_generated_json(http: httpx2.Client, body: Any) -> None:
    _check(_post_json(http, "/auth/revoke", body), {200, 422})


@FUZZ
@given(
    path=st.sampled_from(["/auth/users", "/auth/token", "/auth/revoke"]),
    content=st.binary(max_size=200) | st.text(max_size=100).map(str.encode),
    content_type=content_types,
)
def test_generated_bytes_with_any_content_type(
    http: httpx2.Client, path: str, content: bytes, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post(path, content=content, headers=headers)
    _check(response, {200, 201, 400, 401, 409, 415, 422})


def test_generated_json_is_really_sent_as_json(http: httpx2.Client) -> None:
    # The control for the tests above: a well-formed body in the same shape succeeds.
    body = {"username": f"fz-{time.monotonic_ns() % 10**9}", "password": "long enough"}
    response = _post_json(http, "/auth/users", body)
    assert response.status_code == 201, response.text
