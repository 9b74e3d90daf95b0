"""Workspace request validation: prints figures, asserts nothing
(run: `uv run python bench/workspace_validation_bench.py [--before main]`).

In one run, side by side: the body → column values step of POST /api/items and PUT
/api/categories, by this working tree (msgspec Structs, ts_runtime.api_core.problems) and by the
hand-written validation.py of an earlier commit (`--before`), on the same bodies: valid ones (the
common case: msgspec's decoder is the whole cost) and bodies with three bad fields (the walk that
names each). No server, no database: the step alone, best of `--repeat` rounds (rows interleaved,
so a busy moment of this shared machine hits every row alike).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from workspace_api import validation as new
from workspace_api.errors import ApiError

ROOT = Path(__file__).resolve().parents[1]
PATH = "services/workspace-api/src/workspace_api/validation.py"

ITEM = {"title": "Revisar stop do PETR4", "description": "ajustar para o preço de entrada " * 4,
        "category": "gestao-riscos", "priority": "high", "status": "review",
        "tags": ["petr4", "stop", "swing"], "metadata": {"source": "telegram", "channel": -1001649127710}}
BAD_ITEM = {**ITEM, "title": "", "priority": "urgent", "tags": ["ok", ""]}
CATEGORY = {"display_name": "Gestão de Riscos", "displayName": "Gestão de Riscos", "color": "#3B82F6",
            "sort_order": 3, "is_active": True}
BAD_CATEGORY = {**CATEGORY, "color": "blue", "sort_order": "3", "is_active": "yes"}


def load_before(commit: str):
    """validation.py as it was at `commit`, imported inside the workspace_api package."""
    source = subprocess.run(["git", "show", f"{commit}:{PATH}"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout
    spec = importlib.util.spec_from_loader("workspace_api._validation_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "workspace_api"
    sys.modules[spec.name] = module  # its dataclasses look their module up
    exec(compile(source, f"{commit}:{PATH}", "exec"), module.__dict__)
    return module


def before_step(old, validate: str) -> Callable[[bytes, bool], object]:
    def step(body: bytes, partial: bool) -> object:
        try:
            raw = old.decode_object(body)
        except old.BodyError as exc:
            return [exc.problem]
        values, problems = getattr(old, validate)(raw, partial=partial)
        return problems or values

    return step


def after_step(parse: Callable[..., dict]) -> Callable[[bytes, bool], object]:
    def step(body: bytes, partial: bool) -> object:
        try:
            return parse(body, partial=partial)
        except ApiError as exc:
            return exc.errors

    return step


def per_call_us(step: Callable[[bytes, bool], object], body: bytes, partial: bool, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        step(body, partial)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="main", help="git commit of the hand-written validation")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    old = load_before(args.before)
    rows = [
        ("POST /api/items, valid", ITEM, False, "validate_item", new.item_from_body),
        ("POST /api/items, 3 bad fields", BAD_ITEM, False, "validate_item", new.item_from_body),
        ("PUT /api/categories, valid", CATEGORY, True, "validate_category", new.category_from_body),
        ("PUT /api/categories, 3 bad fields", BAD_CATEGORY, True, "validate_category", new.category_from_body),
    ]
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.repeat):
        for label, body, partial, validate, parse in rows:
            encoded = msgspec.json.encode(body)
            for side, step in (("before", before_step(old, validate)), ("after", after_step(parse))):
                figure = per_call_us(step, encoded, partial, args.calls)
                best[label, side] = min(best.get((label, side), figure), figure)
    print(f"body -> column values, µs per call (best of {args.repeat} x {args.calls:,}); "
          f"before = {args.before}, after = this tree; Python {sys.version.split()[0]}")
    print(f"{'':36} {'before':>8} {'after':>8} {'after/before':>13}")
    for label, *_ in rows:
        b, a = best[label, "before"], best[label, "after"]
        print(f"{label:36} {b:8.2f} {a:8.2f} {a / b:12.2f}x")


if __name__ == "__main__":
    main()
