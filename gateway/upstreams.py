"""The instances of one service, taken in turn; one that refused a connection sits out briefly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Instance:
    base_url: str
    down_until: float = 0.0


class UpstreamPool:
    def __init__(self, service: str, base_urls: tuple[str, ...], *, down_seconds: float) -> None:
        self.service = service
        self.instances = [Instance(url) for url in base_urls]
        self.down_seconds = down_seconds
        self._next = 0

    @property
    def deployed(self) -> bool:
        return bool(self.instances)

    def candidates(self) -> Iterator[Instance]:
        """Every instance that is not sitting out, starting with the next in turn."""
        count = len(self.instances)
        if count == 0:
            return
        start = self._next
        self._next = (start + 1) % count
        now = time.monotonic()
        for offset in range(count):
            instance = self.instances[(start + offset) % count]
            if instance.down_until <= now:
                yield instance

    def mark_down(self, instance: Instance) -> None:
        instance.down_until = time.monotonic() + self.down_seconds

    def retry_after(self) -> int:
        """Seconds until the first instance is tried again (for Retry-After)."""
        now = time.monotonic()
        waits = [i.down_until - now for i in self.instances if i.down_until > now]
        return max(1, int(min(waits, default=1) + 0.999))
