"""Error bodies: `{"error": "...", "details": [...]}` for every 4xx/5xx, as the old API answered.

The envelope and its exception handlers are the core plugin's (ts_runtime.api_core), shared with
the workspace API; this module keeps the names the ingest code imports.
"""

from __future__ import annotations

from ts_runtime.api_core import ApiError, ErrorBody, FieldProblem, database_unavailable, validation_failed

__all__ = ["ApiError", "ErrorBody", "FieldProblem", "database_unavailable", "validation_failed"]
