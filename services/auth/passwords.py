"""Password hashing with argon2id, off the event loop.

Hashing is deliberately slow and memory-hungry, so it runs on a small thread pool of its own
(argon2-cffi releases the GIL): the event loop keeps serving, and a flood of logins queues for
the pool instead of taking `memory_kib` per concurrent attempt without bound.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.auth.config import AuthSettings


class PasswordHashing:
    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=settings.hash_workers, thread_name_prefix="argon2"
        )
        # Checked when the user name is unknown, so that answer takes as long as a wrong password
        # (the timing does not tell which names exist).
        self._decoy_hash = self._hasher.hash("decoy password, never valid")

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True if `password` matches; with no hash, spend the same time and say no."""
        loop = asyncio.get_running_loop()
        check = partial(self._verify, password_hash or self._decoy_hash, password)
        matches = await loop.run_in_executor(self._pool, check)
        return matches and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the configured ones."""
        return self._hasher.check_needs_rehash(password_hash)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
