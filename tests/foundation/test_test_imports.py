"""No test module imports another test module or a conftest: what tests share lives in
tests/support/ (or a helper package such as tests/reliability/harness), and conftest files hold
only fixtures. Importing a test module runs its module-level code twice under two names and makes
pytest collect its tests where they were imported; importing a conftest couples fixtures to helpers."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _is_test_module(dotted: str) -> bool:
    """`tests.x.test_y` or `tests.x.conftest` (or `tests.conftest`)."""
    parts = dotted.split(".")
    return parts[0] == "tests" and any(p.startswith("test_") or p == "conftest" for p in parts[1:])


def _imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of each module `path` imports; relative imports resolved against its package."""
    package = path.relative_to(root.parent).with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            # `from tests.x import test_y` imports the module test_y too.
            found += [(node.lineno, module)] + [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def offending_imports(root: Path = TESTS) -> list[str]:
    offences = {}
    for path in sorted([*root.rglob("test_*.py"), *root.rglob("conftest.py")]):
        for line, module in _imported_modules(path, root):
            where = f"{path.relative_to(root.parent)}:{line}"
            if _is_test_module(module) and len(module) < len(offences.get(where, module + ".")):
                offences[where] = module  # the module itself, not the names taken from it
    return sorted(f"{where} imports {module}" for where, module in offences.items())


def test_no_test_module_imports_another_test_module_or_a_conftest() -> None:
    assert offending_imports() == [], "move what they share into tests/support/"


def test_the_check_sees_each_way_of_importing_one(tmp_path: Path) -> None:
    # The guard above passes vacuously if it cannot see an import: show it each kind.
    package = tmp_path / "tests" / "area"
    package.mkdir(parents=True)
    (package / "test_fine.py").write_text("import os\nfrom tests.support.db import connection\n"
                                          "from tests.reliability.harness import FaultRun\n")
    (package / "test_a.py").write_text("from tests.area.conftest import TOKEN\n")
    (package / "test_b.py").write_text("from .test_a import helper\n")
    (package / "test_c.py").write_text("import tests.area.test_a\n")
    (package / "conftest.py").write_text("from tests.area import test_b\n")
    assert offending_imports(tmp_path / "tests") == [
        "tests/area/conftest.py:1 imports tests.area.test_b",
        "tests/area/test_a.py:1 imports tests.area.conftest",
        "tests/area/test_b.py:1 imports tests.area.test_a",
        "tests/area/test_c.py:1 imports tests.area.test_a",
    ]
