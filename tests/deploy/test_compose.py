"""docker-compose.yml and the Dockerfile, checked for structure (no Docker engine runs here): every
service that exists is deployed, starts only after what it needs is healthy (or, for `setup`, has
completed), runs the one project image, and gets an environment its settings really read; the image
is built in one stage and run, unprivileged, from another."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from deploy.local.stack import discover_services, settings_class
from shared.settings import STACK_WIDE_FIELDS
from tests.support.servers import ROOT

STORES = {"postgres", "redis", "rabbitmq"}
WAITS = {"service_healthy", "service_completed_successfully"}
# Read by the shared command line (`serve`), not by a settings class.
READ_BY_THE_CLI = {"FORWARDED_ALLOW_IPS"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def _substitute(match: re.Match[str]) -> str:
    return "operator-secret" if "?" in match.group(0) else (match.group(2) or "")


def interpolate(value: Any) -> Any:
    """Compose's ${NAME:-default} and ${NAME:?error}, as with an empty environment plus the
    secrets an operator must set."""
    if isinstance(value, str):
        return _VARIABLE.sub(
            lambda m: "operator-secret" if "?" in m.group(0) else m.group(2), value
        )
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return interpolate({k: v for k, v in data.items() if not k.startswith("x-")})


def python_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services that run the project's image, with the package each runs."""
    image = compose["services"]["setup"]["image"]
    return {name: s for name, s in compose["services"].items() if s.get("image") == image}


def package_of(name: str) -> str:
    return "gateway" if name == "gateway" else f"services.{name}"


def test_every_service_that_exists_is_deployed_with_the_gateway(compose: dict[str, Any]) -> None:
    deployed = set(python_services(compose))
    assert {"gateway", "setup", *discover_services()} <= deployed
    for name in discover_services():
        assert compose["services"][name]["command"] == ["python", "-m", f"services.{name}"]
    assert compose["services"]["gateway"]["command"] == ["python", "-m", "gateway"]


def test_setup_runs_every_services_setup_once_the_stores_are_healthy(
    compose: dict[str, Any],
) -> None:
    setup = compose["services"]["setup"]
    script = " ".join(setup["command"])
    for name in discover_services():
        assert f"python -m services.{name} setup" in script
    assert setup["restart"] == "no"  # a one-shot, not a service to keep up
    assert "healthcheck" not in setup
    assert setup["depends_on"] == {store: {"condition": "service_healthy"} for store in STORES}


def test_nothing_starts_before_what_it_needs_is_ready(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, rule in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            assert rule["condition"] in WAITS, f"{name} → {target}: {rule}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            else:
                assert services[target]["restart"] == "no"
        assert "healthcheck" in service or depends, f"{name}: no healthcheck, no dependencies"
    for name in [*discover_services(), "gateway"]:
        depends = services[name]["depends_on"]
        assert depends["setup"] == {"condition": "service_completed_successfully"}
        assert all(depends[store] == {"condition": "service_healthy"} for store in STORES)
    for name in discover_services():  # the gateway's readiness is its services' readiness
        assert services["gateway"]["depends_on"][name] == {"condition": "service_healthy"}


def test_one_image_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    images = {s["image"] for s in python_services(compose).values()}
    builds = {str(s.get("build")) for s in python_services(compose).values()}
    assert len(images) == 1
    assert builds == {"."}
    assert (ROOT / "Dockerfile").exists()
    for name in STORES:
        assert "build" not in compose["services"][name]
        assert compose["services"][name]["image"].split(":")[0] in {"postgres", "redis", "rabbitmq"}


def test_store_data_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name in STORES:
        volumes = compose["services"][name]["volumes"]
        assert volumes, name
        for volume in volumes:
            assert volume.split(":")[0] in declared, f"{name}: {volume} is not a named volume"


def _port(service: dict[str, Any], prefix: str, package: str) -> int:
    env = service["environment"]
    return int(env.get(f"{prefix}PORT", settings_class(package).model_fields["port"].default))


def test_each_process_gets_the_environment_its_settings_read(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in python_services(compose).items():
        env = service["environment"]
        for key in ("ENVIRONMENT", "DATABASE_URL", "REDIS_URL", "AMQP_URL", "JWKS_URL"):
            assert env.get(key), f"{name}: {key} missing"
        # The store URLs name the compose services, with the credentials those are given.
        assert urlsplit(env["DATABASE_URL"]).hostname == "postgres"
        assert urlsplit(env["REDIS_URL"]).hostname == "redis"
        amqp = urlsplit(env["AMQP_URL"])
        assert amqp.hostname == "rabbitmq"
        rabbit_env = services["rabbitmq"]["environment"]
        assert (amqp.username, amqp.password) == (
            rabbit_env["RABBITMQ_DEFAULT_USER"],
            rabbit_env["RABBITMQ_DEFAULT_PASS"],
        )
        assert (
            urlsplit(env["DATABASE_URL"]).password
            == (services["postgres"]["environment"]["POSTGRES_PASSWORD"])
        )
        if name == "setup":
            continue
        package = package_of(name)
        cls = settings_class(package)
        prefix = str(cls.model_config.get("env_prefix", ""))
        for key in env:  # every variable is one its settings read (a typo would be ignored)
            field = key.removeprefix(prefix).lower() if key.startswith(prefix) else None
            known = field in cls.model_fields or key.lower() in STACK_WIDE_FIELDS
            if key in READ_BY_THE_CLI:
                known = key in (ROOT / "shared" / "cli.py").read_text()
            assert known, f"{name}: {key} is read by nothing"
        assert env[f"{prefix}HOST"] == "0.0.0.0"  # noqa: S104 (reachable from the other containers)
        port = _port(service, prefix, package)
        assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])


def test_secrets_are_demanded_not_defaulted() -> None:
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in raw["services"].items():
        if service.get("image") != raw["services"]["setup"]["image"]:
            continue
        env = service.get("environment", {})
        for key, value in env.items():
            if key.endswith("SECRET_KEY"):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", value), f"{name}: {key} has a default"
    assert "AUTH_SECRET_KEY" in raw["services"]["auth"]["environment"]


def test_the_gateway_reaches_exactly_the_deployed_services(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    env = gateway["environment"]
    cls = settings_class("gateway")
    upstreams = [f.removesuffix("_urls") for f in cls.model_fields if f.endswith("_urls")]
    for service in upstreams:
        value = env.get(f"GATEWAY_{service.upper()}_URLS")
        assert value is not None, f"GATEWAY_{service.upper()}_URLS unset: it would be a 127.0.0.1"
        if service in discover_services():
            port = _port(compose["services"][service], f"{service.upper()}_", package_of(service))
            assert value == f"http://{service}:{port}"
        else:
            assert value == "", f"{service} is not deployed"
    published = gateway["ports"][0].rsplit(":", 1)[1]
    assert int(published) == _port(gateway, "GATEWAY_", "gateway")


def dockerfile_stages() -> dict[str, list[str]]:
    """The Dockerfile's instructions (continuation lines joined), by stage name."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            current = stages.setdefault(line.split()[-1], [])
        current.append(line)
    return stages


def test_the_image_builds_in_one_stage_and_runs_unprivileged_in_another() -> None:
    stages = dockerfile_stages()
    assert list(stages) == ["build", "runtime"]
    build, runtime = (" ".join(stages[name]) for name in ("build", "runtime"))
    # The native extension is compiled by `uv sync` in the build stage, from the lock file.
    assert "build-essential" in build
    assert "cmake" in build
    assert "uv sync --frozen --no-dev" in build
    # The runtime stage gets the environment, not the toolchain, and runs as a plain user.
    assert "COPY --from=build /app /app" in runtime
    assert "build-essential" not in runtime
    assert "cmake" not in runtime
    users = [line.split()[1] for line in stages["runtime"] if line.startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0")
    assert "useradd --system" in runtime
    # What the quotes service's setup loads on first run.
    assert "fortunes" in runtime
    # The context leaves out what the image must not carry.
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".run", ".git", "native/build"} <= set(ignored)
