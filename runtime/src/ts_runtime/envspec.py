"""What a service's environment must contain, stated in the service's own settings module.

Each service's `settings.py` ends with an `ENV_SPEC`: the variables its `from_env()` reads that
`uv run validate-env` (the ops app) checks before a deployment, and the loader itself. The ops app
imports these specs instead of restating them, and runs the loader last so that whatever the
service would refuse at start is reported too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from .settings import ConfigError

DATABASE_SCHEMES = ("postgresql", "postgres")
HTTP_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class EnvSpec:
    """One service's environment: which variables are required, and what kind each value is."""

    name: str
    # The service's own settings loader (`Settings.from_env`); it raises ConfigError.
    load: Callable[[], object]
    required: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    urls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ports: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()
    positive: tuple[str, ...] = ("LOG_HISTORY_SIZE",)
    positive_numbers: tuple[str, ...] = ()
    channel_lists: tuple[str, ...] = ()
    needs_database: bool = False

    def load_problem(self, env: Mapping[str, str | None]) -> str | None:
        """What the service's own loader refuses in `env` (None: it starts with these settings)."""
        # A NUL byte cannot be in a real environment (a value read from a .env file can hold one):
        # the loader never sees it, and it is named instead of failing os.environ.
        for key, value in env.items():
            if value is not None and "\x00" in value:
                return f"{key} contains a NUL character"
        with environment(env):
            try:
                self.load()
            except ConfigError as exc:
                return str(exc)
        return None


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Run a settings loader against `values` instead of this process's environment (the loaders
    read os.environ); the environment is restored afterwards. For one-shot commands, not servers:
    os.environ is process-wide."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({key: value for key, value in values.items() if value is not None})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
