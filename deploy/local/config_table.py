"""The configuration table of the README: every environment variable the gateway and the services
read, its default, and who reads it, straight from their settings classes (and the comment above
each field).

    uv run python -m deploy.local.config_table            # print it
    uv run python -m deploy.local.config_table --readme   # rewrite it in README.md
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from deploy.local.stack import ROOT, discover_services, settings_class
from shared.settings import DEV_SECRET_MARKER, STACK_WIDE_FIELDS, ServiceSettings

_FIELD = re.compile(r"^\s+(\w+):\s")

# The fields of shared.settings.ServiceSettings, which every process reads.
BASE_FIELDS = {
    "environment": "development, test or production: outside development logs are JSON lines; "
    "production refuses default secrets",
    "log_level": "Python logging level",
    "host": "address the HTTP server binds",
    "port": "port the HTTP server listens on",
    "database_url": "PostgreSQL (each service keeps its tables in a schema of its own name)",
    "redis_url": "Redis (caches, rate limits, revocations, fan-out)",
    "amqp_url": "RabbitMQ (events and work queues)",
    "jwks_url": "where access tokens' public keys are fetched (the auth service's JWKS)",
    "jwt_issuer": "the `iss` access tokens carry and verifiers demand",
    "jwt_audience": "the `aud` access tokens carry and verifiers demand",
    "outbound_proxy_url": "HTTP proxy for calls to the outside world",
}


def field_comments(cls: type[ServiceSettings]) -> dict[str, str]:
    """The comment lines right above each field of the class body."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("# ").strip())
            continue
        match = _FIELD.match(line)
        if match and pending:
            comments[match.group(1)] = " ".join(pending)
        pending = []
    return comments


def render_default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return "a development-only value" if secret.startswith(DEV_SECRET_MARKER) else "(set)"
    if value is None:
        return "(unset)"
    if value == "":
        return '""'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple) and not value:
        return "(none)"
    return f"`{value}`"


def packages() -> list[str]:
    found = [f"services.{name}" for name in discover_services()]
    if (ROOT / "gateway" / "config.py").exists():
        found.insert(0, "gateway")
    return found


def rows() -> list[tuple[str, str, str, str]]:
    classes = {p.rsplit(".", 1)[-1]: settings_class(p) for p in packages()}
    result = []
    base_comments = {**BASE_FIELDS, **field_comments(ServiceSettings)}
    for name in sorted(ServiceSettings.model_fields):
        if name not in STACK_WIDE_FIELDS:
            continue
        field = ServiceSettings.model_fields[name]
        result.append((name.upper(), render_default(field), "all", base_comments.get(name, "")))
    for service, cls in classes.items():
        prefix = str(cls.model_config.get("env_prefix", ""))
        comments = {**base_comments, **field_comments(cls)}
        for name, field in cls.model_fields.items():
            if name in STACK_WIDE_FIELDS:
                continue
            result.append(
                (f"{prefix}{name.upper()}", render_default(field), service, comments.get(name, ""))
            )
    return result


def table() -> str:
    lines = ["| Variable | Default | Read by | What it sets |", "| --- | --- | --- | --- |"]
    for variable, default, readers, comment in rows():
        comment = comment[:1].upper() + comment[1:].replace("|", "/")
        lines.append(f"| `{variable}` | {default} | {readers} | {comment} |")
    return "\n".join(lines)


_README_BLOCK = re.compile(
    r"(<!-- config-table:start[^>]*-->\n).*?(\n<!-- config-table:end -->)", re.DOTALL
)


def update_readme(readme: Path = ROOT / "README.md") -> bool:
    """Rewrite the table between README's markers; True when it changed."""
    text = readme.read_text()
    new = _README_BLOCK.sub(lambda m: m.group(1) + table() + m.group(2), text)
    if new == text:
        return False
    readme.write_text(new)
    return True


if __name__ == "__main__":
    if sys.argv[1:] == ["--readme"]:
        print("README.md updated" if update_readme() else "README.md already up to date")
    else:
        sys.stdout.write(table() + "\n")
