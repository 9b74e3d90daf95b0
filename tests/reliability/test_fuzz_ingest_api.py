"""Schemathesis against the live ingest API: no 5xx, every answer matches the OpenAPI schema.

The API runs under granian on loopback (see conftest.py); the schema is the one it serves at
/schema/openapi.json. Examples per operation are bounded so the module stays well under a minute.
"""

from __future__ import annotations

import os

from tests.support.live import LiveService
from tests.support.fuzz import fuzz_api

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "30"))


def test_ingest_api_conforms_to_its_schema(ingest_api: LiveService) -> None:
    report = fuzz_api(f"{ingest_api.url}/schema/openapi.json", headers={"X-Gateway-Token": ingest_api.token},
                      max_examples=MAX_EXAMPLES, seed=int(os.environ.get("FUZZ_SEED", "0")),
                      strict=os.environ.get("FUZZ_STRICT") == "1")
    assert len(report.operations) >= 8
    assert not report.failures, report.describe()
