"""Redis: one `redis.asyncio` client per process, and key names under the stack's namespace."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=False, health_check_interval=30)


def key(namespace: str, *parts: str) -> str:
    """`ts:auth:login-fail:alice` — every key of the stack starts with the namespace."""
    return ":".join((namespace, *parts))
