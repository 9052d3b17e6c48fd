"""The quotes service's settings (environment prefix `QUOTES_`), and its collector's sources."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import AnyHttpUrl, AnyUrl, BaseModel, Field, TypeAdapter, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Source(BaseModel):
    """A page (or JSON endpoint) the collector reads quotes from.

    `kind = "html"`: every element matching the CSS `selector` is a quote (its text, white space
    collapsed); `author_selector`, if set, is looked up inside that element.
    `kind = "json"`: `path` (dot separated keys; list indexes are numbers) leads to a string, an
    object, or a list of either; an object's quote is under `text_key`, its author under
    `author_key`.
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    url: AnyHttpUrl
    kind: Literal["html", "json"]
    selector: str | None = None
    author_selector: str | None = None
    path: str = ""
    text_key: str = "text"
    author_key: str = "author"

    @model_validator(mode="after")
    def _kind_has_its_fields(self) -> Source:
        if self.kind == "html" and not self.selector:
            raise ValueError(f"source {self.name}: an html source needs a selector")
        return self


_SOURCES = TypeAdapter(list[Source])


class QuotesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QUOTES_", extra="ignore")

    service_name: ClassVar[str] = "quotes"
    port: int = 8002

    # Sources as a JSON list (QUOTES_SOURCES='[{"name": ..., "url": ..., "kind": "html", ...}]'),
    # and/or a TOML file of `[[sources]]` tables (QUOTES_SOURCES_FILE).
    sources: list[Source] = Field(default_factory=list)
    sources_file: Path | None = None
    # The collector's own proxy; else OUTBOUND_PROXY_URL; else the standard proxy variables.
    proxy_url: AnyUrl | None = None

    collector_enabled: bool = True
    collect_interval_seconds: float = Field(default=3600.0, gt=0)
    # A failing source is tried again after retry_base, 2 × retry_base, 4 × ... (at most the
    # interval), instead of waiting for the next regular run.
    source_retry_base_seconds: float = Field(default=60.0, gt=0)
    source_timeout_seconds: float = Field(default=15.0, gt=0)
    source_max_bytes: int = Field(default=2_000_000, ge=1)

    import_max_bytes: int = Field(default=5_000_000, ge=1)
    # A search of several words that takes longer is cancelled (422: too broad).
    search_timeout_seconds: float = Field(default=5.0, gt=0)
    # Where Debian's `fortunes` package puts its files; `setup` loads them once.
    fortunes_dir: Path = Path("/usr/share/games/fortunes")

    @model_validator(mode="after")
    def _read_sources_file(self) -> QuotesSettings:
        if self.sources_file is not None:
            data = tomllib.loads(self.sources_file.read_text(encoding="utf-8"))
            self.sources = [*self.sources, *_SOURCES.validate_python(data.get("sources", []))]
        names = [source.name for source in self.sources]
        if len(names) != len(set(names)):
            raise ValueError("QUOTES_SOURCES: source names must be unique")
        return self

    @property
    def collector_proxy(self) -> str | None:
        proxy = self.proxy_url or self.outbound_proxy_url
        return str(proxy) if proxy else None
