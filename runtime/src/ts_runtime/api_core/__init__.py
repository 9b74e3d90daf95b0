"""The Litestar plumbing both APIs share: one core plugin (operations routes, error envelope,
request checks, middleware). See plugin.py; the pieces live beside it, one concern per module.

It holds nothing service-specific: each API passes a CoreConfig.
"""

from .checks import CoreRequest, utf8_problem
from .errors import ApiError, ErrorBody, FieldProblem, database_unavailable, not_found, validation_failed
from .middleware import BodyTimeout
from .plugin import CoreConfig, CorePlugin, database_check

__all__ = [
    "ApiError",
    "BodyTimeout",
    "CoreConfig",
    "CorePlugin",
    "CoreRequest",
    "ErrorBody",
    "FieldProblem",
    "database_check",
    "database_unavailable",
    "not_found",
    "utf8_problem",
    "validation_failed",
]
