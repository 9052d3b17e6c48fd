"""Login throttling against password guessing, per user name and per client address, in Redis.

Each attempt is counted *before* the password is checked (and taken back when it succeeds), so a
burst of concurrent guesses cannot slip past the limit while the first ones are still hashing.
A counter lives for one fixed window from its first failure; past the limit, attempts are refused
with 429 and `Retry-After` = what is left of the window — right password or not, or guessing
would go on at full speed. A successful login clears its user name's counter.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from services.auth.config import AuthSettings
from shared.errors import TooManyRequests
from shared.redis_client import key

# Delete the name's counter; decrement the address's only while it exists (a DECR on a counter
# that expired meanwhile would create one without expiry).
_FORGIVE = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end
return 0
"""


@dataclass(frozen=True)
class _Counter:
    redis_key: str
    limit: int


class LoginThrottle:
    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        self.redis = redis
        self.namespace = settings.namespace
        self.window = settings.throttle_window_seconds
        self.username_limit = settings.throttle_username_failures
        self.ip_limit = settings.throttle_ip_failures

    def _counters(self, username: str | None, client_ip: str) -> list[_Counter]:
        counters = [
            _Counter(key(self.namespace, "auth", "login-fail", "ip", client_ip), self.ip_limit)
        ]
        if username is not None:
            counters.append(
                _Counter(
                    key(self.namespace, "auth", "login-fail", "user", username), self.username_limit
                )
            )
        return counters

    async def attempt(self, *, username: str | None, client_ip: str) -> None:
        """Count an attempt; raise 429 when the user name or the address is over its limit.
        `username` is None for a name that cannot exist (it is then counted per address only)."""
        counters = self._counters(username, client_ip)
        async with self.redis.pipeline(transaction=True) as pipe:
            for counter in counters:
                pipe.incr(counter.redis_key)
                pipe.expire(counter.redis_key, self.window, nx=True)
                pipe.ttl(counter.redis_key)
            results = await pipe.execute()
        for index, counter in enumerate(counters):
            count, ttl = results[3 * index], results[3 * index + 2]
            if count > counter.limit:
                raise TooManyRequests(
                    "Too many failed logins; try again later",
                    retry_after=ttl if ttl > 0 else self.window,
                )

    async def succeeded(self, *, username: str, client_ip: str) -> None:
        """Not a failure: clear the name's counter, take the attempt back from the address."""
        ip_counter, user_counter = self._counters(username, client_ip)
        await self.redis.eval(_FORGIVE, 2, user_counter.redis_key, ip_counter.redis_key)
