"""The merged OpenAPI document: every reachable service's paths and components in one schema.

Services serve their paths under their own prefix already, so paths never collide. Component
schemas usually agree (Problem, HTTPValidationError); where two services use one name for
different schemas, the later one is renamed `<service>__<Name>` and its references rewritten.
A service that does not answer is left out (and named in `x-missing-services`). Every operation
also documents what the gateway itself may answer in front of it (413, 429, 502, 503, 504). The
result is cached briefly: docs pages fetch it often, services change it rarely.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx2

from gateway.upstreams import UpstreamPool
from shared.errors import PROBLEM_JSON, Problem

FETCH_TIMEOUT_S = 3.0
_REF_PREFIX = "#/components/schemas/"
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer"},
    }
}


async def _fetch(http: httpx2.AsyncClient, pool: UpstreamPool) -> dict[str, Any] | None:
    for instance in pool.candidates():
        try:
            response = await http.get(f"{instance.base_url}/openapi.json", timeout=FETCH_TIMEOUT_S)
        except httpx2.TransportError:
            continue
        if response.status_code == 200:
            try:
                document = response.json()
            except ValueError:
                continue
            if isinstance(document, dict):
                return document
    return None


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith(_REF_PREFIX):
                name = v[len(_REF_PREFIX) :]
                out[k] = _REF_PREFIX + renames.get(name, name)
            else:
                out[k] = _rewrite_refs(v, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def merge(
    documents: Mapping[str, dict[str, Any]], *, title: str, version: str, missing: list[str]
) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every service of the stack, reached through the gateway.",
        },
        "paths": {},
        "components": {"schemas": {}},
        "tags": [],
    }
    if missing:
        merged["x-missing-services"] = missing
    schemas: dict[str, Any] = merged["components"]["schemas"]
    tag_names: set[str] = set()
    for service, document in documents.items():
        components = document.get("components") or {}
        own = components.get("schemas") or {}
        renames = {
            name: f"{service}__{name}"
            for name, schema in own.items()
            if name in schemas and schemas[name] != schema
        }
        document = _rewrite_refs(document, renames) if renames else document
        for name, schema in (document.get("components") or {}).get("schemas", {}).items():
            schemas[renames.get(name, name)] = schema
        for kind, entries in components.items():
            if kind != "schemas" and isinstance(entries, dict):
                merged["components"].setdefault(kind, {}).update(entries)
        for path, item in (document.get("paths") or {}).items():
            merged["paths"][path] = item
        for tag in document.get("tags") or []:
            if isinstance(tag, dict) and tag.get("name") not in tag_names:
                tag_names.add(tag["name"])
                merged["tags"].append(tag)
    return merged


def _problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": _REF_PREFIX + "Problem"}}},
    }
    if retry_after:
        response["headers"] = _RETRY_AFTER
    return response


def document_gateway_answers(merged: dict[str, Any], *, rate_limited: bool) -> None:
    """Add to every operation the answers the gateway gives in front of any service, unless the
    service documents that status itself: a client meets them whichever route it calls."""
    answers = {
        "502": _problem("The service could not be reached or broke off its answer"),
        "503": _problem("The service is not deployed or a dependency is down", retry_after=True),
        "504": _problem("The service did not answer in time"),
    }
    if rate_limited:
        answers["429"] = _problem("Too many requests from this address or user", retry_after=True)
    too_large = _problem("The body is larger than the gateway accepts for this service")
    for item in merged["paths"].values():
        for method, operation in item.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            for status, response in answers.items():
                responses.setdefault(status, response)
            if "requestBody" in operation:
                responses.setdefault("413", too_large)
    merged["components"]["schemas"].setdefault("Problem", Problem.model_json_schema())


class MergedOpenApi:
    def __init__(
        self,
        pools: Mapping[str, UpstreamPool],
        *,
        cache_s: float,
        title: str,
        version: str,
        rate_limited: bool,
    ) -> None:
        self.pools = pools
        self.rate_limited = rate_limited
        self.cache_s = cache_s
        self.title = title
        self.version = version
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, http: httpx2.AsyncClient) -> dict[str, Any]:
        async with self._lock:
            if self._cached is None or time.monotonic() - self._cached_at > self.cache_s:
                self._cached = await self._build(http)
                self._cached_at = time.monotonic()
            return self._cached

    async def _build(self, http: httpx2.AsyncClient) -> dict[str, Any]:
        names = [name for name, pool in self.pools.items() if pool.deployed]
        fetched = await asyncio.gather(*(_fetch(http, self.pools[name]) for name in names))
        documents = {n: d for n, d in zip(names, fetched, strict=True) if d is not None}
        missing = [n for n, d in zip(names, fetched, strict=True) if d is None]
        merged = merge(documents, title=self.title, version=self.version, missing=missing)
        document_gateway_answers(merged, rate_limited=self.rate_limited)
        return merged
