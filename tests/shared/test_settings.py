from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from shared.settings import DEV_SECRET_MARKER, ServiceSettings


class ExampleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_")
    service_name: ClassVar[str] = "example"
    secret_key: SecretStr = SecretStr(DEV_SECRET_MARKER + "example")


def test_stack_wide_names_configure_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/stack")
    monkeypatch.setenv("PORT", "1234")
    settings = ExampleSettings()
    assert str(settings.database_url) == "postgresql://u@db.example/stack"
    # Only the stack-wide fields fall back to unprefixed names: PORT is not ours.
    assert settings.port == 8000


def test_the_prefixed_name_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/stack")
    monkeypatch.setenv("EXAMPLE_DATABASE_URL", "postgresql://u@db.example/own")
    monkeypatch.setenv("EXAMPLE_PORT", "8123")
    settings = ExampleSettings()
    assert str(settings.database_url) == "postgresql://u@db.example/own"
    assert settings.port == 8123


def test_production_refuses_a_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="EXAMPLE_SECRET_KEY must be set"):
        ExampleSettings()
    monkeypatch.setenv("EXAMPLE_SECRET_KEY", "a-real-secret")
    assert ExampleSettings().json_logs is True
