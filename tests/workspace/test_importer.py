"""`workspace-import`: the old LowDB library.json into PostgreSQL, safely and verifiably."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest

from tests.support.db import fetch as query
from tests.workspace.conftest import BIN
from workspace_api import importer

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "workspace" / "library.json"


def run(path: Path | None, database_url: str, *flags: str) -> int:
    args = ([str(path)] if path is not None else []) + ["--database-url", database_url, *flags]
    return importer.main(args)


def stored_items(database_url: str) -> dict[str, dict]:
    rows = query(database_url, "SELECT * FROM workspace.workspace_items")
    return {str(r["id"]): dict(r) for r in rows}


@pytest.fixture
def library(tmp_path: Path) -> Path:
    path = tmp_path / "library.json"
    shutil.copy(SAMPLE, path)
    return path


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "library.json"
    path.write_text(json.dumps(data, ensure_ascii=False))
    return path


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_good_file_imports_every_item_identically(library: Path, database_url: str, capsys) -> None:
    assert run(library, database_url) == importer.EXIT_OK
    out = capsys.readouterr().out
    source = json.loads(SAMPLE.read_text())
    stored = stored_items(database_url)
    assert set(stored) == {i["id"] for i in source["items"]}
    for item in source["items"]:
        row = stored[item["id"]]
        for field in ("title", "description", "category", "priority", "status", "tags"):
            assert row[field] == item[field], field
        assert _iso(row["created_at"]) == item["createdAt"] and _iso(row["updated_at"]) == item["updatedAt"]
    assert "summary      items: 14 in file, 14 valid, 0 invalid; 14 inserted, 0 already present" in out
    assert "verified     14/14 valid items and 6/6 categories" in out
    assert "items        14/14 written (14 new)" in out  # progress
    # The backup is an exact copy, named after today's date.
    backup = library.with_name(f"library.json.backup-{date.today():%Y%m%d}")
    assert backup.read_bytes() == SAMPLE.read_bytes()
    assert f"backup       {backup}" in out


def test_rerun_is_safe(library: Path, database_url: str, capsys) -> None:
    assert run(library, database_url) == importer.EXIT_OK
    first = stored_items(database_url)
    capsys.readouterr()
    assert run(library, database_url) == importer.EXIT_OK
    out = capsys.readouterr().out
    assert stored_items(database_url) == first
    assert "14 valid, 0 invalid; 0 inserted, 14 already present" in out
    assert "already holds this content" in out  # same-day backup not duplicated
    assert len(list(library.parent.glob("library.json.backup-*"))) == 1


def test_second_backup_the_same_day_with_other_content_gets_a_time(library: Path, database_url: str) -> None:
    assert run(library, database_url) == importer.EXIT_OK
    data = json.loads(library.read_text())
    data["items"] = data["items"][:2]
    library.write_text(json.dumps(data))
    assert run(library, database_url) == importer.EXIT_OK
    backups = sorted(p.name for p in library.parent.glob("library.json.backup-*"))
    assert len(backups) == 2 and backups[0] == f"library.json.backup-{date.today():%Y%m%d}"
    assert library.with_name(backups[1]).read_bytes() == library.read_bytes()


def test_bad_items_are_reported_by_index_and_field_and_the_rest_imported(tmp_path: Path, database_url: str,
                                                                         capsys) -> None:
    good = [{"id": str(uuid.uuid4()), "title": f"bom {n}", "category": "bug"} for n in range(3)]
    bad = [
        {"id": str(uuid.uuid4()), "title": "", "category": "bug", "priority": "urgent"},
        {"title": "sem id", "category": "bug"},
        {"id": "123", "title": "id ruim", "category": "bug", "createdAt": "ontem"},
        {"id": str(uuid.uuid4()), "title": "categoria", "category": "nao-existe"},
        "not an object",
    ]
    items = [good[0], bad[0], good[1], bad[1], bad[2], bad[3], good[2], bad[4]]
    path = write(tmp_path, {"items": items, "categories": [{"name": "Bad Slug"}, {"name": "nova"}]})
    assert run(path, database_url) == importer.EXIT_PARTIAL
    out = capsys.readouterr().out
    for line in ("items[1].title must be 1 to 200 characters", "items[1].priority must be one of low, medium, high, critical",
                 "items[3].id is required (a UUID)", "items[4].id must be a UUID string",
                 "items[4].createdAt must be an ISO 8601 date-time",
                 "items[5].category 'nao-existe' is not a known category", "items[7].entry must be an object",
                 "categories[0].name must be a slug"):
        assert f"invalid      {line}" in out, line
    assert "items: 3 valid, 5 invalid; categories: 1 valid, 1 invalid" in out
    assert set(stored_items(database_url)) == {i["id"] for i in good}
    assert query(database_url, "SELECT name FROM workspace.workspace_categories WHERE name = 'nova'")


def test_duplicate_ids_in_the_file_keep_the_first(tmp_path: Path, database_url: str, capsys) -> None:
    shared = str(uuid.uuid4())
    path = write(tmp_path, {"items": [{"id": shared, "title": "primeiro", "category": "bug"},
                                      {"id": shared, "title": "segundo", "category": "bug"}]})
    assert run(path, database_url) == importer.EXIT_PARTIAL
    assert "items[1].id duplicates items[0] (the first one is imported)" in capsys.readouterr().out
    assert stored_items(database_url)[shared]["title"] == "primeiro"


def test_ids_already_in_the_database_are_left_alone(tmp_path: Path, database_url: str, capsys) -> None:
    existing = str(uuid.uuid4())
    query(database_url, "INSERT INTO workspace.workspace_items (id, title, category) VALUES ($1, 'no banco', 'bug')",
          uuid.UUID(existing))
    path = write(tmp_path, {"items": [{"id": existing, "title": "do arquivo", "category": "bug"},
                                      {"id": str(uuid.uuid4()), "title": "novo", "category": "bug"}]})
    assert run(path, database_url) == importer.EXIT_OK
    assert "1 inserted, 1 already present" in capsys.readouterr().out
    assert stored_items(database_url)[existing]["title"] == "no banco"


def test_dry_run_writes_nothing(library: Path, database_url: str, capsys) -> None:
    assert run(library, database_url, "--dry-run") == importer.EXIT_OK
    out = capsys.readouterr().out
    assert "would insert 14 items (0 already present)" in out and "nothing written" in out
    assert stored_items(database_url) == {}
    assert not list(library.parent.glob("library.json.backup-*"))


def test_missing_file_is_a_clean_no_op(tmp_path: Path, capsys) -> None:
    # No database is needed (the URL points nowhere) and nothing is created.
    assert run(tmp_path / "library.json", "postgresql://nobody@127.0.0.1:1/none") == importer.EXIT_OK
    assert capsys.readouterr().out.strip() == f"No LowDB file at {tmp_path / 'library.json'}: nothing to import."
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("content", "message"), [
    (b'{"items": [1,', "is not valid JSON: Expecting value (line 1, column 14)"),
    (b"\xff\xfe garbage", "is not UTF-8 text"),
    (b'{"items": {"a": 1}}', '"items" must be a list'),
    (b'"just a string"', 'must hold a JSON object with "items" and "categories" lists'),
    (b'{"items": [' + b"[" * 100_000 + b"]}", "nested too deeply"),
    (b'{"items": [' + b"9" * 5000 + b"]}", "is not usable"),
])
def test_corrupt_file_is_a_clear_error(tmp_path: Path, database_url: str, capsys, content: bytes, message: str) -> None:
    path = tmp_path / "library.json"
    path.write_bytes(content)
    assert run(path, database_url) == importer.EXIT_FAILED
    err = capsys.readouterr().err
    assert message in err and err.startswith("workspace-import: ")
    assert stored_items(database_url) == {}


def test_one_transaction_a_failure_leaves_nothing(tmp_path: Path, database_url: str, capsys) -> None:
    # The database refuses the very last item (a trigger of this test's own database), after
    # the earlier batches were written: they must roll back too.
    query(database_url, """
        CREATE FUNCTION public.refuse_quebra() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.title = 'quebra' THEN RAISE EXCEPTION 'refused by the test'; END IF;
            RETURN NEW;
        END $$""")
    query(database_url, "CREATE TRIGGER refuse_quebra BEFORE INSERT ON workspace.workspace_items "
                        "FOR EACH ROW EXECUTE FUNCTION public.refuse_quebra()")
    items = [{"id": str(uuid.uuid4()), "title": f"item {n}", "category": "bug"} for n in range(importer.BATCH + 5)]
    items.append({"id": str(uuid.uuid4()), "title": "quebra", "category": "nova"})
    path = write(tmp_path, {"items": items, "categories": [{"name": "nova"}]})
    assert run(path, database_url) == importer.EXIT_FAILED
    captured = capsys.readouterr()
    assert f"items        {importer.BATCH}/{len(items)} written" in captured.out  # progress of the first batch
    assert "nothing was committed" in captured.err and "refused by the test" in captured.err
    assert stored_items(database_url) == {}
    assert not query(database_url, "SELECT 1 FROM workspace.workspace_categories WHERE name = 'nova'")


def test_old_lowdb_categories_keep_every_field(tmp_path: Path, database_url: str, capsys) -> None:
    """The old shapes: LowDB's defaults (`id` = name, `active`), the API's snake_case with `icon`
    and `created_by`, today's camelCase, and an entry named only by its `id`."""
    categories = [
        {"id": "feature", "name": "feature", "description": "Novas funcionalidades", "color": "#10b981",
         "display_order": 1, "active": True},
        {"id": "alertas", "name": "alertas", "display_name": "Alertas de Preço", "description": "Alvos e stops",
         "color": "#0EA5E9", "icon": "BellIcon", "display_order": 7, "is_active": False, "created_by": "marcelo",
         "created_at": "2025-03-01T10:00:00.000Z", "updated_at": "2025-03-02T10:00:00.000Z"},
        {"name": "camelo", "displayName": "Camelo", "displayOrder": 8, "isActive": True, "createdBy": "ana",
         "createdAt": "2025-04-01T10:00:00.000Z"},
        {"id": "so-id", "description": "sem name"},
        {"id": "ruim", "name": "ruim", "color": "#3B82F6\n"},
    ]
    items = [{"id": str(uuid.uuid4()), "title": "usa alertas", "category": "alertas"}]
    path = write(tmp_path, {"items": items, "categories": categories})
    assert run(path, database_url) == importer.EXIT_PARTIAL
    out = capsys.readouterr().out
    assert "invalid      categories[4].color must be a colour like #3B82F6" in out
    rows = {r["name"]: dict(r) for r in query(database_url, "SELECT * FROM workspace.workspace_categories")}
    # `feature` was already there (seeded): the database's version is kept.
    assert rows["feature"]["description"] == "New functionality"
    alertas = rows["alertas"]
    assert (alertas["display_name"], alertas["icon"], alertas["display_order"], alertas["is_active"],
            alertas["created_by"], alertas["color"]) == ("Alertas de Preço", "BellIcon", 7, False, "marcelo", "#0EA5E9")
    assert (_iso(alertas["created_at"]), _iso(alertas["updated_at"])) == ("2025-03-01T10:00:00.000Z",
                                                                            "2025-03-02T10:00:00.000Z")
    camelo = rows["camelo"]
    assert (camelo["display_name"], camelo["display_order"], camelo["created_by"], _iso(camelo["updated_at"])) == (
        "Camelo", 8, "ana", "2025-04-01T10:00:00.000Z")
    # Named by its id; without an order it takes its place in the file (the old service's rule).
    assert (rows["so-id"]["display_name"], rows["so-id"]["display_order"]) == ("So Id", 4)
    assert "ruim" not in rows
    assert [i["category"] for i in stored_items(database_url).values()] == ["alertas"]


def test_unreachable_database_and_missing_schema(library: Path, empty_database_url: str, capsys) -> None:
    assert run(library, "postgresql://postgres@127.0.0.1:1/none") == importer.EXIT_FAILED
    assert "cannot connect to postgresql://postgres@127.0.0.1:1/none" in capsys.readouterr().err
    assert run(library, empty_database_url) == importer.EXIT_FAILED
    assert "run `uv run migrate` first" in capsys.readouterr().err


def test_console_script_default_path_and_env(tmp_path: Path, database_url: str) -> None:
    """`workspace-import` with no argument reads backend/data/workspace/library.json under the cwd."""
    folder = tmp_path / "backend" / "data" / "workspace"
    folder.mkdir(parents=True)
    shutil.copy(SAMPLE, folder / "library.json")
    script = BIN / "workspace-import"  # the console script `uv run workspace-import` runs
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url}
    result = subprocess.run([str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "reading      backend/data/workspace/library.json" in result.stdout
    assert len(stored_items(database_url)) == 14
    dry = subprocess.run([str(script), "--dry-run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "would insert 0 items (14 already present)" in dry.stdout
