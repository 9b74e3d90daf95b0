"""Schemathesis against the live workspace API: no 5xx, every answer matches the OpenAPI schema.

The API runs under granian on loopback (see conftest.py) with its own migrated database; the
schema is the one it serves at /schema/openapi.json. It has no token. Examples per operation are
bounded (FUZZ_MAX_EXAMPLES, default 20) so the module stays well under a minute. The old
un-prefixed paths (/items…, /categories…) are the same handlers as /api/items… and
/api/categories…, so they are fuzzed only with FUZZ_LEGACY=1.
"""

from __future__ import annotations

import os

from tests.support.live import LiveService
from tests.support.fuzz import fuzz_api

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
LEGACY = ("GET /items", "POST /items", "GET /items/{item_id}", "PUT /items/{item_id}", "DELETE /items/{item_id}",
          "GET /categories", "POST /categories", "GET /categories/{name}", "PUT /categories/{name}",
          "DELETE /categories/{name}", "PATCH /categories/{name}/toggle")


def test_workspace_api_conforms_to_its_schema(workspace_api: LiveService) -> None:
    report = fuzz_api(f"{workspace_api.url}/schema/openapi.json", headers={},
                      max_examples=MAX_EXAMPLES, seed=int(os.environ.get("FUZZ_SEED", "0")),
                      strict=os.environ.get("FUZZ_STRICT") == "1",
                      skip=() if os.environ.get("FUZZ_LEGACY") == "1" else LEGACY)
    print(f"fuzzed {len(report.operations)} operations, {report.cases} cases: {report.operations}")
    assert len(report.operations) >= 10
    assert not report.failures, report.describe()
