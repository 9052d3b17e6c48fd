"""Encryption at rest for what auth keeps secret in PostgreSQL (signing keys' private halves).

One Fernet key (AES-128-CBC + HMAC-SHA256, authenticated) per purpose, derived with HKDF from
AUTH_SECRET_KEY: any string of the operator's choosing works, and a value encrypted for one
purpose cannot be passed off as another.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBoxError(Exception):
    """The ciphertext was not made with this secret (wrong AUTH_SECRET_KEY, or tampered)."""


class SecretBox:
    def __init__(self, secret: str, *, purpose: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"tinkerstack-auth",
            info=purpose.encode(),
        ).derive(secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken as exc:
            raise SecretBoxError("cannot decrypt: wrong AUTH_SECRET_KEY or altered data") from exc
