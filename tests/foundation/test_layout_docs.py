"""The README's layout and docs/architecture.md name folders and files that exist (they follow renames)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where a file named relative to its package (`ingest/sql.py`, `ts_ops/envcheck.py`) may live.
PACKAGE_ROOTS = [ROOT, ROOT / "services/gateway/src/gateway", ROOT / "services/ingest-api/src/ingest_api",
                 ROOT / "contracts/src/contracts", ROOT / "contracts/src", ROOT / "runtime/src", ROOT / "ops/src"]


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout", 1)[1]
    return section.split("```", 2)[1]


def test_readme_layout_lists_every_member_folder_that_exists() -> None:
    folders = [line.split()[0] for line in _layout_block().strip().splitlines()]
    for folder in folders:
        assert (ROOT / folder).exists(), f"README layout names {folder}, which does not exist"
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    assert {member.rstrip("/") + "/" for member in members} <= set(folders), "a workspace member is missing"


def test_readme_layout_says_which_members_are_libraries_and_which_apps() -> None:
    kinds = {line.split()[0]: line.split()[1] for line in _layout_block().strip().splitlines()
             if line.split()[1] in {"library", "app"}}
    assert kinds == {"contracts/": "library", "runtime/": "library", "services/gateway/": "app",
                     "services/ingest-api/": "app", "services/workspace-api/": "app", "ops/": "app"}


def test_architecture_names_only_files_that_exist() -> None:
    text = (ROOT / "docs/architecture.md").read_text()
    named = set(re.findall(r"([A-Za-z0-9_./-]+\.(?:py|sql))", text))
    assert len(named) > 15
    missing = [name for name in sorted(named)
               if not name.endswith("NNN_name.sql") and not any((base / name).exists() for base in PACKAGE_ROOTS)]
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
