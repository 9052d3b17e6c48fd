"""The auth service's settings (environment prefix `AUTH_`)."""

from __future__ import annotations

import os
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import DEV_SECRET_MARKER, ServiceSettings

# How late a verifier may still accept an expired token (shared.jwks.JwksVerifier's leeway), plus
# a margin: revocation marks and retired keys must outlive every token they concern.
VERIFIER_LEEWAY_SECONDS = 60


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    service_name: ClassVar[str] = "auth"
    port: int = 8001

    # Encrypts the signing keys' private halves at rest (and, later, third-party tokens).
    secret_key: SecretStr = SecretStr(DEV_SECRET_MARKER + "auth-secret-key")

    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=60, le=365 * 86_400)

    # A new signing key is published this long before it starts signing, so verifiers that cached
    # the key set (they refetch on an unknown kid at most every 10 s) already know it.
    key_activation_delay_seconds: int = Field(default=60, ge=0, le=86_400)
    # A replaced key stays published this long after its successor started signing, so the tokens
    # it signed still verify until they expire.
    key_publish_after_retire_seconds: int = Field(default=86_400, ge=60)
    # Running instances reread the keys this often (a rotation by the CLI is picked up).
    key_reload_seconds: float = Field(default=30.0, gt=0, le=3_600)
    jwks_max_age_seconds: int = Field(default=300, ge=0, le=86_400)

    # Login throttling: this many failed logins within the window for one user name, or from one
    # client address, and further attempts are refused with 429 until the window ends.
    throttle_window_seconds: int = Field(default=900, ge=1)
    throttle_username_failures: int = Field(default=10, ge=1)
    throttle_ip_failures: int = Field(default=100, ge=1)

    # argon2id cost (argon2-cffi's defaults, RFC 9106's low-memory profile). Tests lower them.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65_536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    # Threads that hash passwords: bounds the CPU and memory (memory_kib each) a login flood takes.
    hash_workers: int = Field(default=min(4, os.cpu_count() or 1), ge=1)

    # Expired sessions, refresh tokens and keys are deleted this often.
    cleanup_interval_seconds: float = Field(default=3_600.0, gt=0)

    @model_validator(mode="after")
    def _keys_outlive_tokens(self) -> AuthSettings:
        needed = self.access_token_ttl_seconds + VERIFIER_LEEWAY_SECONDS
        if self.key_publish_after_retire_seconds < needed:
            raise ValueError(
                f"AUTH_KEY_PUBLISH_AFTER_RETIRE_SECONDS must be at least the access-token "
                f"lifetime plus {VERIFIER_LEEWAY_SECONDS} s ({needed})"
            )
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("AUTH_ARGON2_MEMORY_KIB must be at least 8 × AUTH_ARGON2_PARALLELISM")
        return self
