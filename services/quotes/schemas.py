"""Request and response bodies of the quotes API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from services.quotes.text import clean_text

MAX_TEXT = 10_000


class Quote(BaseModel):
    id: int
    text: str
    author: str | None
    source: str | None
    added_at: datetime


class QuoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    author: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=500)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = clean_text(value)
        if not value:
            raise ValueError("the text is blank")
        return value

    @field_validator("author", "source")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return (clean_text(value) or None) if value is not None else None


class SearchHit(Quote):
    rank: float = Field(description="Relevance; higher is better")
    snippet: str = Field(
        description="HTML-safe excerpt of the text: escaped, matched words in <mark>…</mark>"
    )


class SearchResult(BaseModel):
    total: int = Field(description="How many quotes match in all")
    items: list[SearchHit]
    corrected: str | None = Field(
        default=None,
        description="When the query as typed found nothing: the spelling-corrected query whose "
        "results these are",
    )


class ImportResult(BaseModel):
    added: int
    skipped: int = Field(description="Quotes already present (or repeated in the file)")
