"""The settings every service shares.

A service subclasses `ServiceSettings` with its own `env_prefix` ("AUTH_", "QUOTES_", ...). The
stack-wide fields below (store URLs, environment, namespace, token audience) are read from the
prefixed name first (`AUTH_DATABASE_URL`) and fall back to the stack-wide name (`DATABASE_URL`), so
one environment configures the whole stack while any service can still be pointed elsewhere.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import AnyUrl, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

# A secret whose default starts with this marker is refused outside development.
DEV_SECRET_MARKER = "dev-insecure-"  # noqa: S105 (the marker, not a secret)

STACK_WIDE_FIELDS = frozenset(
    {
        "environment",
        "log_level",
        "database_url",
        "redis_url",
        "amqp_url",
        "namespace",
        "jwks_url",
        "jwt_issuer",
        "jwt_audience",
        "outbound_proxy_url",
    }
)


class _StackWideEnv(EnvSettingsSource):
    """Unprefixed environment variables, for the stack-wide fields only."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name not in STACK_WIDE_FIELDS:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_prefix="")

    # The service's name, also its URL prefix ("/auth") and its PostgreSQL schema.
    service_name: ClassVar[str] = ""

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000

    database_url: AnyUrl = AnyUrl("postgresql://postgres@127.0.0.1:5432/tinkerstack")
    redis_url: AnyUrl = AnyUrl("redis://127.0.0.1:6379/0")
    amqp_url: AnyUrl = AnyUrl("amqp://guest:guest@127.0.0.1:5672/")
    # Prefix of every Redis key and RabbitMQ exchange/queue name, so several stacks (or test runs)
    # can share one Redis and one broker.
    namespace: str = "ts"

    jwks_url: AnyUrl = AnyUrl("http://127.0.0.1:8001/auth/.well-known/jwks.json")
    jwt_issuer: str = "tinkerstack"
    jwt_audience: str = "tinkerstack"
    outbound_proxy_url: AnyUrl | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        stack_wide = _StackWideEnv(settings_cls, env_prefix="")
        return init_settings, env_settings, stack_wide, dotenv_settings, file_secret_settings

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def json_logs(self) -> bool:
        return not self.is_development

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServiceSettings:
        if self.environment != "production":
            return self
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value().startswith(
                DEV_SECRET_MARKER
            ):
                prefix = self.model_config.get("env_prefix", "")
                raise ValueError(f"{prefix}{name.upper()} must be set in production")
        return self
