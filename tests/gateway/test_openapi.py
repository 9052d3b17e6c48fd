"""The merged schema documents what the gateway itself answers in front of every service."""

from __future__ import annotations

from typing import Any

from gateway.openapi import document_gateway_answers, merge

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def service_document() -> dict[str, Any]:
    return {
        "paths": {
            "/quotes": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {}}}},
                    "responses": {"201": {"description": "Created"}},
                },
                "parameters": [],
            },
            "/quotes/{quote_id}": {
                "get": {"responses": {"200": {"description": "OK"}}},
            },
            "/auth/token": {
                "post": {"responses": {"429": {"description": "Too many failed logins"}}},
            },
        }
    }


def merged_document(*, rate_limited: bool) -> dict[str, Any]:
    merged = merge({"quotes": service_document()}, title="t", version="1", missing=[])
    document_gateway_answers(merged, rate_limited=rate_limited)
    return merged


def test_every_operation_documents_the_gateways_own_answers() -> None:
    merged = merged_document(rate_limited=True)
    paths = merged["paths"]
    for path, method in [("/quotes", "post"), ("/quotes/{quote_id}", "get")]:
        responses = paths[path][method]["responses"]
        assert {"429", "502", "503", "504"} <= set(responses)
        problem = responses["429"]["content"]["application/problem+json"]["schema"]
        assert problem == PROBLEM_REF
        assert responses["429"]["headers"]["Retry-After"]["required"] is True
        assert "Retry-After" in responses["503"]["headers"]
    assert "Problem" in merged["components"]["schemas"]
    # 413 only where a body is sent; path-level keys are not operations.
    assert "413" in paths["/quotes"]["post"]["responses"]
    assert "413" not in paths["/quotes/{quote_id}"]["get"]["responses"]
    assert paths["/quotes"]["parameters"] == []


def test_a_status_the_service_documents_is_kept() -> None:
    responses = merged_document(rate_limited=True)["paths"]["/auth/token"]["post"]["responses"]
    assert responses["429"] == {"description": "Too many failed logins"}


def test_no_429_without_rate_limits() -> None:
    merged = merged_document(rate_limited=False)
    assert "429" not in merged["paths"]["/quotes/{quote_id}"]["get"]["responses"]
    assert "503" in merged["paths"]["/quotes/{quote_id}"]["get"]["responses"]
