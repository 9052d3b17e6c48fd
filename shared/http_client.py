"""Outbound HTTP (service to service, third parties): httpx2 clients that forward the request id,
keep no cookies between users, and go through the configured proxy."""

from __future__ import annotations

import httpx2

from shared.request_id import HEADER, current_request_id


async def _forward_request_id(request: httpx2.Request) -> None:
    request_id = current_request_id()
    if request_id and HEADER not in request.headers:
        request.headers[HEADER] = request_id


class _NoCookies(httpx2.Cookies):
    """A jar that never keeps anything: one client serves every user."""

    def extract_cookies(self, response: httpx2.Response) -> None:
        return None


def create_http_client(
    *,
    base_url: str = "",
    timeout: float = 10.0,
    proxy: str | None = None,
    max_connections: int = 100,
) -> httpx2.AsyncClient:
    client = httpx2.AsyncClient(
        base_url=base_url,
        timeout=httpx2.Timeout(timeout, connect=5.0),
        limits=httpx2.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        proxy=proxy,
        # With an explicit proxy, the environment's proxy variables must not override it.
        trust_env=proxy is None,
        event_hooks={"request": [_forward_request_id]},
        follow_redirects=False,
    )
    client.cookies = _NoCookies()
    return client
