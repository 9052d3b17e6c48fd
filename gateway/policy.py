"""What the gateway does with a path: which service it belongs to, whether it needs a token,
how long the upstream may stay silent and how large the body may be.

The access table follows the public contract (API.md): chat, feeds and compute need a token
throughout (except the pages and assets a browser loads before anyone signs in), auth only for
the signed-in user's own resources, quotes only for adding. Everything else is public.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from gateway.config import GatewaySettings

SERVICES = ("auth", "quotes", "chat", "feeds", "imaging", "compute")


class Access(Enum):
    PUBLIC = "public"
    TOKEN = "token"  # noqa: S105 (an access level, not a secret)


ANY = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
READ = frozenset({"GET", "HEAD"})
POST = frozenset({"POST"})

# First match wins; a path that matches nothing is public.
ACCESS_TABLE: tuple[tuple[frozenset[str], str, Access], ...] = (
    # Browser pages and their assets: the page itself lets the user sign in.
    (READ, r"/(chat|feeds|compute)/(static/.*)?", Access.PUBLIC),
    (ANY, r"/chat(/.*)?", Access.TOKEN),
    (ANY, r"/feeds(/.*)?", Access.TOKEN),
    (ANY, r"/compute(/.*)?", Access.TOKEN),
    (ANY, r"/auth/me", Access.TOKEN),
    (ANY, r"/auth/connections(/.*)?", Access.TOKEN),
    (POST, r"/quotes/?", Access.TOKEN),
    (POST, r"/quotes/import", Access.TOKEN),
)
_COMPILED = tuple(
    (methods, re.compile(pattern), access) for methods, pattern, access in ACCESS_TABLE
)

# Routes that hold the request open on purpose (long-poll): they get the long-poll timeout.
LONG_POLL = (
    re.compile(r"/chat/rooms/[^/]+/messages"),
    re.compile(r"/compute/jobs/[^/]+"),
)


def access_for(method: str, path: str) -> Access:
    for methods, pattern, access in _COMPILED:
        if method in methods and pattern.fullmatch(path):
            return access
    return Access.PUBLIC


def service_of(path: str) -> str | None:
    """`/quotes/json/random` → "quotes"; a path outside every service prefix → None."""
    end = path.find("/", 1)
    first = path[1:] if end == -1 else path[1:end]
    return first if first in SERVICES else None


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    timeout_s: float
    long_poll_timeout_s: float

    def timeout_for(self, method: str, path: str) -> float:
        if method == "GET" and any(p.fullmatch(path) for p in LONG_POLL):
            return max(self.timeout_s, self.long_poll_timeout_s)
        return self.timeout_s


def limits_by_service(settings: GatewaySettings) -> dict[str, Limits]:
    return {
        service: Limits(
            max_body_bytes=settings.max_body_bytes(service),
            timeout_s=settings.service_timeout(service),
            long_poll_timeout_s=settings.long_poll_timeout_seconds,
        )
        for service in SERVICES
    }
