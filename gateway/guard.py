"""The checks a request passes before it is forwarded: the access token on protected routes
(verified against the auth service's JWKS, revocation looked up in Redis) and the per-address and
per-user rate limits. The rate-limit counters and the revocation lookup share one Redis round trip
(a Lua script), so a protected request costs one Redis call however many checks it passes.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.errors import ServiceUnavailable, TooManyRequests, Unauthorized
from shared.jwks import JwksVerifier, Principal, revoked_session_key
from shared.redis_client import key

logger = logging.getLogger(__name__)

ACCESS_TOKEN = "access_token"  # noqa: S105 (a cookie / query parameter name)

# KEYS: the counters, then (when ARGV[2] is "1") the revoked-session key.
# ARGV: window seconds, "1"/"0" check revocation, then each counter's limit.
# Returns, per counter, 0 when under its limit or the seconds until it resets; then 1 if revoked.
_SCRIPT = """
local window = tonumber(ARGV[1])
local counters = #KEYS
if ARGV[2] == '1' then counters = counters - 1 end
local out = {}
for i = 1, counters do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then redis.call('EXPIRE', KEYS[i], window) end
  local wait = 0
  if count > tonumber(ARGV[i + 2]) then
    wait = redis.call('TTL', KEYS[i])
    if wait < 1 then
      redis.call('EXPIRE', KEYS[i], window)
      wait = window
    end
  end
  out[i] = wait
end
if ARGV[2] == '1' then
  out[counters + 1] = redis.call('EXISTS', KEYS[counters + 1])
end
return out
"""


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
        self.redis = redis
        self.namespace = namespace
        self.ip_limit = ip_limit
        self.user_limit = user_limit
        self.window_s = window_s
        self._script = redis.register_script(_SCRIPT)
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
        keys: list[str] = []
        limits: list[int] = []
        if self.ip_limit > 0:
            keys.append(key(self.namespace, "gateway", "rate", "ip", client_ip))
            limits.append(self.ip_limit)
        if principal is not None and self.user_limit > 0:
            keys.append(key(self.namespace, "gateway", "rate", "user", principal.user_id))
            limits.append(self.user_limit)
        check_revoked = principal is not None and principal.session_id is not None
        if check_revoked:
            assert principal is not None
            assert principal.session_id is not None
            keys.append(revoked_session_key(self.namespace, principal.session_id))
        if not keys:
            return principal
        try:
            result = await self._script(
                keys=keys, args=[self.window_s, "1" if check_revoked else "0", *limits]
            )
        except (RedisError, OSError) as exc:
            if principal is not None:
                raise ServiceUnavailable("The token cannot be checked right now") from exc
            self._warn_open(exc)
            return principal
        if check_revoked and result[-1]:
            raise Unauthorized("The token was revoked")
        waits = [int(w) for w in result[: len(limits)] if int(w) > 0]
        if waits:
            raise TooManyRequests("Too many requests: slow down", retry_after=max(waits))
        return principal

    def _warn_open(self, exc: Exception) -> None:
        # Rate limits fail open for public routes: Redis being away must not take the site down.
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            logger.warning("rate limits not applied, Redis unreachable: %r", exc)
