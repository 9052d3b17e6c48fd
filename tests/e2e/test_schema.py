"""Property-based tests of the whole stack from its published contract: schemathesis reads the
gateway's merged /openapi.json and sends every operation generated requests, valid and invalid,
through the real gateway to the real auth and quotes processes, signed in as a real user. No
input may cause a 5xx, and every answer must be as documented: its status, content type, headers
and body."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx2
import pytest
import schemathesis
from schemathesis import BaseSchema, Case

from tests.e2e.conftest import Stack
from tests.support.servers import ROOT

USERNAME, PASSWORD = "fuzzer", "fuzz-fuzz-fuzz"

CONFIG = {
    # Reproducible: the same requests on every run.
    "seed": 20261125,
    "generation": {"max-examples": 50, "no-shrink": True, "deterministic": True},
    "checks": {
        # Every check (no 5xx, documented statuses, content types, headers and bodies, Allow on
        # 405, invalid input refused, auth not ignored, ...) but one whose premise this API does
        # not share: that what the schema allows is accepted. The token endpoint answers OAuth's
        # 400 to a grant without its fields, and a quote's text must be more than white space.
        "positive_data_acceptance": {"enabled": False},
    },
    "request-timeout": 30,
}


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    # Hundreds of requests a minute from one address and one user are the point here, not abuse.
    return {"GATEWAY_RATE_LIMIT_IP": "0", "GATEWAY_RATE_LIMIT_USER": "0"}


@pytest.fixture(scope="module")
def access_token(stack: Stack) -> str:
    """A real access token of an admin (so that removing quotes is exercised too), logged in
    through the gateway."""
    subprocess.run(
        [sys.executable, "-m", "services.auth", "create-user", USERNAME, "--admin"],
        cwd=ROOT,
        env={**os.environ, **stack.env},
        input=f"{PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )
    with httpx2.Client(base_url=stack.gateway, timeout=30) as http:
        token = http.post(
            "/auth/token",
            data={"grant_type": "password", "username": USERNAME, "password": PASSWORD},
        )
        assert token.status_code == 200, token.text
        return str(token.json()["access_token"])


@pytest.fixture(scope="module")
def api_schema(stack: Stack, access_token: str) -> BaseSchema:
    schema = schemathesis.openapi.from_url(
        f"{stack.gateway}/openapi.json", config=schemathesis.Config.from_dict(CONFIG)
    )
    schema.config.update(
        base_url=stack.gateway, headers={"Authorization": f"Bearer {access_token}"}
    )
    return schema


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis (4.32) renames the running test through `Node._nodeid`, which pytest 9.2
    keeps elsewhere now: give it the attribute to read and write (the names only decorate the
    report; each operation is still reported as a subtest of its own)."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Case) -> None:
    case.call_and_validate()
