"""Ed25519 signing keys: made, stored encrypted, rotated, and held in memory by each instance.

The keys live in PostgreSQL so every instance signs with the same key and publishes the same set.
An instance rereads them every `key_reload_seconds` (lazily, on use), so a rotation made by the CLI
reaches running instances without a restart. A rotated-in key is published before it signs
(`key_activation_delay_seconds`) and a replaced key stays published after (until its tokens
have expired), so no verifier ever meets a token whose key it cannot find.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc.jwk import KeySet, OKPKey

from services.auth.config import AuthSettings
from services.auth.repository import AuthRepository, KeyRecord
from services.auth.secretbox import SecretBox
from shared.jwks import ALGORITHM, has_kid

KEY_PURPOSE = "signing-key"
# As shared.jwks.RemoteKeySet: made-up kids must not turn into a flood of database reads.
UNKNOWN_KID_REREAD_SECONDS = 10.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: OKPKey
    public_jwk: dict[str, Any]
    activates_at: datetime


@dataclass(frozen=True)
class NewKey:
    kid: str
    public_jwk: dict[str, Any]
    private_key_encrypted: bytes


def key_box(settings: AuthSettings) -> SecretBox:
    """What encrypts the private keys at rest."""
    return SecretBox(settings.secret_key.get_secret_value(), purpose=KEY_PURPOSE)


def generate_key(box: SecretBox) -> NewKey:
    key = OKPKey.generate_key("Ed25519")
    # The RFC 7638 thumbprint: unique per key, and anyone can recompute it from the public key.
    kid = key.thumbprint()
    public = {**key.as_dict(private=False), "kid": kid, "alg": ALGORITHM, "use": "sig"}
    private = json.dumps(key.as_dict(private=True)).encode()
    return NewKey(kid=kid, public_jwk=public, private_key_encrypted=box.encrypt(private))


async def ensure_signing_key(repo: AuthRepository, box: SecretBox) -> bool:
    """Make the first key if there is none; True if this call made it. Safe to run concurrently:
    the repository serialises the check-and-insert."""
    if await repo.has_newest_key():
        return False
    new = generate_key(box)
    return await repo.add_first_key(
        kid=new.kid, public_jwk=new.public_jwk, private_key_encrypted=new.private_key_encrypted
    )


async def rotate_signing_key(
    repo: AuthRepository, box: SecretBox, settings: AuthSettings, *, activation_delay: int
) -> NewKey:
    new = generate_key(box)
    await repo.rotate_key(
        kid=new.kid,
        public_jwk=new.public_jwk,
        private_key_encrypted=new.private_key_encrypted,
        activation_delay_seconds=activation_delay,
        publish_after_retire_seconds=settings.key_publish_after_retire_seconds,
    )
    return new


@dataclass(frozen=True)
class _Snapshot:
    keys: list[SigningKey]  # newest activation first
    expires: dict[str, datetime | None]
    key_set: KeySet  # the public keys, for verifying
    # PostgreSQL's clock minus ours, so activation follows the database's clock.
    clock_offset: timedelta
    loaded_at: float

    def signing_key(self) -> SigningKey:
        now = datetime.now(UTC) + self.clock_offset
        for key in self.keys:
            if key.activates_at <= now:
                return key
        # Only keys that are not active yet: cannot happen after ensure_signing_key, whose key
        # is active at once; signing with the next one due beats refusing every login.
        return self.keys[-1]

    def published(self) -> list[SigningKey]:
        now = datetime.now(UTC) + self.clock_offset
        return [k for k in self.keys if (self.expires[k.kid] or now) >= now]


class KeyRing:
    def __init__(self, repo: AuthRepository, box: SecretBox, *, reload_seconds: float) -> None:
        self.repo = repo
        self.box = box
        self.reload_seconds = reload_seconds
        self._snapshot: _Snapshot | None = None
        self._decrypted: dict[str, SigningKey] = {}
        self._lock = asyncio.Lock()
        self._reread_at = 0.0

    async def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - snapshot.loaded_at < self.reload_seconds:
            return snapshot
        async with self._lock:
            snapshot = self._snapshot
            if snapshot is None:
                snapshot = self._snapshot = await self._load()
            elif time.monotonic() - snapshot.loaded_at >= self.reload_seconds:
                try:
                    snapshot = self._snapshot = await self._load()
                except Exception:
                    # The keys in hand stay good: a database blip must not stop signing and
                    # publishing. Try again after another interval.
                    logger.exception("rereading the signing keys failed; keeping the loaded ones")
                    snapshot = self._snapshot = replace(snapshot, loaded_at=time.monotonic())
        return snapshot

    async def reload(self) -> None:
        async with self._lock:
            self._snapshot = await self._load()

    async def _load(self) -> _Snapshot:
        published = await self.repo.published_keys()
        if not any(record.expires_at is None for record in published.keys):
            await ensure_signing_key(self.repo, self.box)
            published = await self.repo.published_keys()
        keys = [self._signing_key(record) for record in published.keys]
        self._decrypted = {key.kid: key for key in keys}
        return _Snapshot(
            keys=keys,
            expires={record.kid: record.expires_at for record in published.keys},
            key_set=KeySet([OKPKey.import_key(key.public_jwk) for key in keys]),
            clock_offset=published.db_now - datetime.now(UTC),
            loaded_at=time.monotonic(),
        )

    def _signing_key(self, record: KeyRecord) -> SigningKey:
        known = self._decrypted.get(record.kid)
        if known is not None:
            return known
        private = json.loads(self.box.decrypt(record.private_key_encrypted))
        return SigningKey(
            kid=record.kid,
            private=OKPKey.import_key(private, parameters={"kid": record.kid}),
            public_jwk=record.public_jwk,
            activates_at=record.activates_at,
        )

    async def signing_key(self) -> SigningKey:
        return (await self._current()).signing_key()

    async def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk for key in (await self._current()).published()]}

    async def public_key_set(self) -> KeySet:
        return (await self._current()).key_set

    async def key_set(self, kid: str | None) -> KeySet:
        """The ring as a `shared.jwks.KeySource`: a token with an unknown `kid` (a key rotated in
        by another instance or the CLI) makes it reread the database, at most every
        `UNKNOWN_KID_REREAD_SECONDS`."""
        keys = await self.public_key_set()
        if has_kid(keys, kid) or time.monotonic() - self._reread_at < UNKNOWN_KID_REREAD_SECONDS:
            return keys
        self._reread_at = time.monotonic()
        await self.reload()
        return await self.public_key_set()
