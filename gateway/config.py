"""Gateway settings (env prefix `GATEWAY_`).

Upstreams: one variable per service, `GATEWAY_<SERVICE>_URLS`, a comma-separated list of base URLs
(`http://127.0.0.1:8001,http://127.0.0.1:8011`) spread round-robin. An empty value means the service
is not deployed: its prefix answers 503.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

MIB = 1024 * 1024


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")
    service_name: ClassVar[str] = "gateway"

    port: int = 8000
    # Peers whose X-Forwarded-* headers are believed (a load balancer in front); by default the
    # gateway is the edge and believes no one.
    forwarded_allow_ips: str = ""

    auth_urls: str = "http://127.0.0.1:8001"
    quotes_urls: str = "http://127.0.0.1:8002"
    chat_urls: str = "http://127.0.0.1:8003"
    feeds_urls: str = "http://127.0.0.1:8004"
    imaging_urls: str = "http://127.0.0.1:8005"
    compute_urls: str = "http://127.0.0.1:8006"

    # Largest request body per service, in bytes (413 above it).
    auth_max_body_bytes: int = 1 * MIB
    quotes_max_body_bytes: int = 16 * MIB
    chat_max_body_bytes: int = 1 * MIB
    feeds_max_body_bytes: int = 4 * MIB
    imaging_max_body_bytes: int = 64 * MIB
    compute_max_body_bytes: int = 2048 * MIB

    # Longest silence from an upstream, in seconds, before the gateway gives up (504).
    timeout_seconds: float = 30.0
    long_poll_timeout_seconds: float = 35.0
    imaging_timeout_seconds: float = 120.0
    compute_timeout_seconds: float = 120.0
    connect_timeout_seconds: float = 3.0
    # An instance that refused a connection is skipped for this long.
    upstream_down_seconds: float = 2.0
    upstream_max_connections: int = 1024

    # Rate limits: requests per window, per client address and per signed-in user (0: off).
    rate_limit_ip: int = 1200
    rate_limit_user: int = 600
    rate_limit_window_seconds: int = 60

    # CORS: allowed origins, comma-separated ("*" allows any, without credentials).
    cors_origins: str = ""
    cors_max_age_seconds: int = 600

    openapi_cache_seconds: float = 10.0
    # One line per proxied request (method, path, status, duration, request id).
    access_log: bool = True

    def service_urls(self, service: str) -> tuple[str, ...]:
        raw: str = getattr(self, f"{service}_urls")
        return tuple(url.strip().rstrip("/") for url in raw.split(",") if url.strip())

    def max_body_bytes(self, service: str) -> int:
        return int(getattr(self, f"{service}_max_body_bytes"))

    def service_timeout(self, service: str) -> float:
        return float(getattr(self, f"{service}_timeout_seconds", self.timeout_seconds))

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())
