"""Error answers in the old envelope, with one entry per bad field.

`{"success": false, "error": "Validation failed", "details": ["title is required", …],
"errors": [{"field": "title", "message": "is required"}, …]}`: `details` reads like the ingest
API's, `errors` names each field for a form to highlight. The envelope and its exception handlers
are the core plugin's (ts_runtime.api_core, with `success_flag`), shared with the ingest API; this
module keeps the names the workspace code imports.
"""

from __future__ import annotations

from ts_runtime.api_core import ApiError, ErrorBody, FieldProblem, database_unavailable, not_found, validation_failed

__all__ = ["ApiError", "ErrorBody", "FieldProblem", "database_unavailable", "not_found", "validation_failed"]
