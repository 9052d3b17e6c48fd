"""The checks a request passes before it is forwarded: the access token on protected routes
(verified against the auth service's JWKS, revocation looked up in Redis) and the per-address and
per-user rate limits (fixed windows).

The rate-limit counters and the revocation lookup of a request share one Lua script call, and the
checks of all requests that arrive in the same event-loop turn share that call too: one Redis round
trip per batch, not per check, which is what keeps the cost of the limits low under load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from shared.errors import ServiceUnavailable, TooManyRequests, Unauthorized
from shared.jwks import JwksVerifier, Principal, revoked_session_key
from shared.redis_client import key

logger = logging.getLogger(__name__)

ACCESS_TOKEN = "access_token"  # noqa: S105 (a cookie / query parameter name)

# Several requests' checks in one call. KEYS: per check, its counters then (when flagged) its
# revoked-session key. ARGV: the window in seconds, then per check: the number of counters, "1"/"0"
# for the revocation lookup, each counter's limit. Returns, per check and counter, 0 when under the
# limit or the seconds until the counter resets; then 1/0 for "revoked" when it was looked up.
_SCRIPT = """
local window = tonumber(ARGV[1])
local k, a = 1, 2
local out = {}
while a <= #ARGV do
  local counters = tonumber(ARGV[a])
  local revocation = ARGV[a + 1]
  a = a + 2
  for i = 1, counters do
    local count = redis.call('INCR', KEYS[k])
    if count == 1 then redis.call('EXPIRE', KEYS[k], window) end
    local wait = 0
    if count > tonumber(ARGV[a]) then
      wait = redis.call('TTL', KEYS[k])
      if wait < 1 then
        redis.call('EXPIRE', KEYS[k], window)
        wait = window
      end
    end
    out[#out + 1] = wait
    k = k + 1
    a = a + 1
  end
  if revocation == '1' then
    out[#out + 1] = redis.call('EXISTS', KEYS[k])
    k = k + 1
  end
end
return out
"""
MAX_BATCH = 256


@dataclass
class _Check:
    counters: list[str]
    limits: list[int]
    revoked_key: str | None
    result: asyncio.Future[list[int]]


class _Batcher:
    """Checks submitted during one turn of the event loop leave together, as one script call:
    under load, one Redis round trip serves many requests instead of one each."""

    def __init__(self, script: AsyncScript, window_s: int) -> None:
        self.script = script
        self.window_s = window_s
        self._pending: list[_Check] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(
        self, counters: list[str], limits: list[int], revoked_key: str | None
    ) -> asyncio.Future[list[int]]:
        loop = asyncio.get_running_loop()
        check = _Check(counters, limits, revoked_key, loop.create_future())
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append(check)
        if len(self._pending) >= MAX_BATCH:
            self._flush()
        return check.result

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.ensure_future(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Check]) -> None:
        keys: list[str] = []
        args: list[int | str] = [self.window_s]
        for check in batch:
            keys += check.counters
            args += [len(check.counters), "1" if check.revoked_key else "0", *check.limits]
            if check.revoked_key:
                keys.append(check.revoked_key)
        try:
            answer = await self.script(keys=keys, args=args)
        except Exception as exc:
            for check in batch:
                if not check.result.done():
                    check.result.set_exception(exc)
            return
        position = 0
        for check in batch:
            size = len(check.counters) + (1 if check.revoked_key else 0)
            if not check.result.done():
                check.result.set_result([int(v) for v in answer[position : position + size]])
            position += size


def bearer_token(
    headers: list[tuple[bytes, bytes]], query_string: bytes, *, websocket: bool
) -> str | None:
    """The token from `Authorization: Bearer`, else the `access_token` cookie, else (WebSocket
    handshakes only, where browsers cannot set headers) the `access_token` query parameter."""
    cookie_header = b""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif name == b"cookie":
            cookie_header = value
    if cookie_header:
        for part in cookie_header.decode("latin-1").split(";"):
            cookie_name, _, cookie_value = part.strip().partition("=")
            if cookie_name == ACCESS_TOKEN and cookie_value:
                return cookie_value
    if websocket and query_string:
        for param, param_value in parse_qsl(query_string.decode("latin-1")):
            if param == ACCESS_TOKEN and param_value:
                return param_value
    return None


class VerifiedTokens:
    """Verified tokens remembered briefly: a client sends the same token with every request, and
    the signature check is the costliest step. Only tokens that verified are kept, keyed on the
    whole token; each is dropped at its expiry, or sooner (keys can be withdrawn)."""

    def __init__(self, verifier: JwksVerifier, *, max_entries: int = 10_000, ttl_s: float = 60.0):
        self.verifier = verifier
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        now = time.time()
        entry = self._entries.get(token)
        if entry is not None:
            principal, good_until = entry
            if now < good_until:
                return principal
            del self._entries[token]
        principal = await self.verifier.verify(token)
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[token] = (principal, min(principal.expires_at, now + self.ttl_s))
        return principal


class Guard:
    def __init__(
        self,
        *,
        tokens: VerifiedTokens,
        redis: Redis,
        namespace: str,
        ip_limit: int,
        user_limit: int,
        window_s: int,
    ) -> None:
        self.tokens = tokens
        self.namespace = namespace
        self.ip_limit = ip_limit
        self.user_limit = user_limit
        self._batcher = _Batcher(redis.register_script(_SCRIPT), window_s)
        self._last_warning = 0.0

    async def check(
        self, *, client_ip: str, token: str | None, needs_token: bool
    ) -> Principal | None:
        """The signed-in user (on protected routes), or a ProblemError: 401, 429 or 503."""
        principal: Principal | None = None
        if needs_token:
            if not token:
                raise Unauthorized("An access token is required")
            principal = await self.tokens.verify(token)
        counters: list[str] = []
        limits: list[int] = []
        if self.ip_limit > 0:
            counters.append(key(self.namespace, "gateway", "rate", "ip", client_ip))
            limits.append(self.ip_limit)
        if principal is not None and self.user_limit > 0:
            counters.append(key(self.namespace, "gateway", "rate", "user", principal.user_id))
            limits.append(self.user_limit)
        revoked_key = None
        if principal is not None and principal.session_id is not None:
            revoked_key = revoked_session_key(self.namespace, principal.session_id)
        if not counters and revoked_key is None:
            return principal
        try:
            result = await self._batcher.submit(counters, limits, revoked_key)
        except (RedisError, OSError) as exc:
            if principal is not None:
                raise ServiceUnavailable("The token cannot be checked right now") from exc
            self._warn_open(exc)
            return principal
        if revoked_key is not None and result[-1]:
            raise Unauthorized("The token was revoked")
        waits = [wait for wait in result[: len(counters)] if wait > 0]
        if waits:
            raise TooManyRequests("Too many requests: slow down", retry_after=max(waits))
        return principal

    def _warn_open(self, exc: Exception) -> None:
        # Rate limits fail open for public routes: Redis being away must not take the site down.
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            logger.warning("rate limits not applied, Redis unreachable: %r", exc)
