"""Requests reach the right service with path, query and body intact, and the answers come back
with the gateway's conventions (request id, no hop-by-hop headers, no shared cookies)."""

from __future__ import annotations

import asyncio
import gzip
import json
import time

import httpx2

from tests.gateway.harness import RunningGateway
from tests.gateway.upstream import GZIPPED
from tests.support.tokens import TokenIssuer

PROBLEM = "application/problem+json"


def header_map(entry: dict[str, object]) -> dict[str, str]:
    return {k: v for k, v in entry["headers"]}  # type: ignore[misc, union-attr]


async def test_path_query_method_and_body_reach_the_service(client: httpx2.AsyncClient) -> None:
    response = await client.post(
        "/quotes/echo/a%2Fb/c?q=caf%C3%A9&x=1&x=2",
        content=b"plain body",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 200
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["raw_path"] == "/quotes/echo/a%2Fb/c"
    assert seen["query"] == "q=caf%C3%A9&x=1&x=2"
    assert seen["body"] == "plain body"
    assert header_map(seen)["content-type"] == "text/plain"


async def test_several_instances_take_turns(client: httpx2.AsyncClient) -> None:
    instances = [(await client.get("/quotes/echo")).json()["instance"] for _ in range(6)]
    assert set(instances) == {"a", "b"}


async def test_forwarded_headers_are_set_by_the_gateway(client: httpx2.AsyncClient) -> None:
    response = await client.get(
        "/quotes/echo",
        headers={"X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6", "Host": "example.org"},
    )
    headers = header_map(response.json())
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "example.org"
    assert "forwarded" not in headers
    assert headers["host"] != "example.org"


async def test_request_id_travels_client_service_log_and_back(
    client: httpx2.AsyncClient, gateway: RunningGateway
) -> None:
    response = await client.get("/quotes/echo", headers={"X-Request-ID": "trace-me-1234"})
    assert response.headers["x-request-id"] == "trace-me-1234"
    assert header_map(response.json())["x-request-id"] == "trace-me-1234"
    # Access lines are written in batches: poll the log for ours.
    deadline = time.monotonic() + 10
    while not any(
        e.get("request_id") == "trace-me-1234" and e["msg"].startswith("GET /quotes/echo 200")
        for e in (json.loads(line) for line in gateway.log().splitlines() if line.startswith("{"))
    ):
        assert time.monotonic() < deadline, "the access line never reached the log"
        await asyncio.sleep(0.05)


async def test_an_insane_request_id_is_replaced(client: httpx2.AsyncClient) -> None:
    response = await client.get("/quotes/echo", headers={"X-Request-ID": "bad id\twith spaces"})
    made = response.headers["x-request-id"]
    assert made != "bad id\twith spaces"
    assert header_map(response.json())["x-request-id"] == made


async def test_hop_by_hop_headers_do_not_cross(client: httpx2.AsyncClient) -> None:
    response = await client.get(
        "/quotes/echo",
        headers={
            "Connection": "keep-alive, X-Client-Hop",
            "X-Client-Hop": "private",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Upgrade": "h2c",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "X-End-To-End": "kept",
        },
    )
    sent = header_map(response.json())
    for name in ("x-client-hop", "keep-alive", "te", "upgrade", "proxy-authorization"):
        assert name not in sent
    assert sent["x-end-to-end"] == "kept"
    # The upstream's own hop-by-hop headers stop at the gateway too.
    assert "x-private-hop" not in response.headers
    assert "keep-alive" not in response.headers
    assert response.headers["x-kept"] == "yes"


async def test_cookies_are_not_shared_between_users(gateway: RunningGateway) -> None:
    async with (
        httpx2.AsyncClient(base_url=gateway.base_url) as alice,
        httpx2.AsyncClient(base_url=gateway.base_url) as bob,
    ):
        first = await alice.get("/quotes/echo", params={"cookie": "alice-secret"})
        assert first.headers["set-cookie"].startswith("session=alice-secret")
        # Bob's requests carry no cookie that the upstream gave Alice.
        for _ in range(4):
            seen = (await bob.get("/quotes/echo", params={"cookie": "bob"})).json()
            assert "alice-secret" not in json.dumps(seen)
            assert header_map(seen).get("cookie") in (None, "session=bob")
        # Alice's own cookie is hers to send back; it reaches the upstream as she sent it.
        again = (await alice.get("/quotes/echo")).json()
        assert header_map(again)["cookie"] == "session=alice-secret"


async def test_compressed_bodies_pass_untouched(gateway: RunningGateway) -> None:
    # No automatic decompression on the client side, so the bytes seen are the wire bytes.
    async with (
        httpx2.AsyncClient(base_url=gateway.base_url) as http,
        http.stream("GET", "/quotes/compressed", headers={"Accept-Encoding": "gzip"}) as response,
    ):
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.headers["content-encoding"] == "gzip"
    assert raw == GZIPPED
    assert gzip.decompress(raw).startswith(b"hello, compressed world")


async def test_no_accept_encoding_is_invented(client: httpx2.AsyncClient) -> None:
    response = await client.get("/quotes/echo", headers={"Accept-Encoding": "identity"})
    assert header_map(response.json())["accept-encoding"] == "identity"
    async with httpx2.AsyncClient(base_url=str(client.base_url), headers={}) as bare:
        request = bare.build_request("GET", "/quotes/echo")
        del request.headers["accept-encoding"]
        seen = (await bare.send(request)).json()
    assert "accept-encoding" not in header_map(seen)


async def test_a_service_not_deployed_answers_503(client: httpx2.AsyncClient) -> None:
    response = await client.get("/imaging/anything")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) > 0
    assert "not deployed" in response.json()["detail"]


async def test_an_unreachable_service_answers_503(
    client: httpx2.AsyncClient, issuer: TokenIssuer
) -> None:
    token = issuer.issue(sub="unreachable-user")
    for _ in range(2):  # the first marks the instance down, the second finds it down
        response = await client.get("/feeds", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["detail"] == "The feeds service is not reachable"


async def test_outside_every_prefix_is_the_gateways_own_404(client: httpx2.AsyncClient) -> None:
    for path in ("/nowhere", "/quotesx/echo"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


async def test_bad_content_length_is_refused(gateway: RunningGateway) -> None:
    # A raw request: client libraries will not send a malformed Content-Length.
    host, port = gateway.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /quotes/echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    await writer.drain()
    head = await reader.read(200)
    writer.close()
    assert head.startswith(b"HTTP/1.1 400")


async def test_head_answers_carry_the_headers_and_no_body(client: httpx2.AsyncClient) -> None:
    # HEAD goes through aiohttp's client, not the gateway's own (whose parser cannot be told that
    # a Content-Length answers a HEAD); either way the answer is the service's.
    response = await client.head("/quotes/echo")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0
    assert response.headers["x-kept"] == "yes"
