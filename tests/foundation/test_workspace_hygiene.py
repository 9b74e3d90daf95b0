"""Each workspace member imports only what it declares (no dependency 'by luck')."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = {
    "contracts": ROOT / "contracts",
    "ts-runtime": ROOT / "runtime",
    "ops": ROOT / "ops",
    "gateway": ROOT / "services" / "gateway",
    "ingest-api": ROOT / "services" / "ingest-api",
    "workspace-api": ROOT / "services" / "workspace-api",
}
# Import names of our own members.
OWN_PACKAGES = {"contracts": "contracts", "ts_runtime": "ts-runtime", "ts_ops": "ops", "gateway": "gateway",
                "ingest_api": "ingest-api", "workspace_api": "workspace-api"}


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _declared(member_dir: Path) -> set[str]:
    project = tomllib.loads((member_dir / "pyproject.toml").read_text())["project"]
    return {_normalise(Requirement(dep).name) for dep in project.get("dependencies", [])}


def _imported_top_levels(member_dir: Path) -> set[str]:
    names: set[str] = set()
    for path in (member_dir / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("member", sorted(MEMBERS))
def test_member_imports_only_declared_distributions(member: str) -> None:
    member_dir = MEMBERS[member]
    declared = _declared(member_dir)
    distributions = packages_distributions()
    undeclared = []
    for top in sorted(_imported_top_levels(member_dir)):
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        if top in OWN_PACKAGES:
            owner = {OWN_PACKAGES[top]}
        else:
            owner = {_normalise(d) for d in distributions.get(top, [top])}
        if owner == {_normalise(member)}:
            continue
        if not owner & declared:
            undeclared.append(f"{top} (from {', '.join(sorted(owner))})")
    assert not undeclared, f"{member} imports undeclared packages: {undeclared}"


def test_contracts_depend_on_msgspec_alone() -> None:
    assert _declared(MEMBERS["contracts"]) == {"msgspec"}


def test_no_service_imports_another_service() -> None:
    services = {"gateway", "ingest_api", "workspace_api"}
    for member in ("gateway", "ingest-api", "workspace-api"):
        own = member.replace("-", "_")
        assert not (_imported_top_levels(MEMBERS[member]) & (services - {own})), member
