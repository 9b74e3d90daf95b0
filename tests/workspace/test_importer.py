"""`workspace-import`: the old LowDB library.json into PostgreSQL, safely and verifiably.

The sample (samples/workspace/library.json, our own data) has the shapes the old service wrote
over time: items under a UUID with `updatedAt: null` (its first routes), items without any id
(the week neither the route nor the LowDB client set one), items named `item-<ms>-<random>` by
the LowDB client with `metadata`, `createdBy`/`updatedBy` null, and the six LowDB default
categories (`id` = `name`, `active`, lower-case colours).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest

from tests.support.db import fetch as query
from tests.support.workspace import BIN
from workspace_api import importer, library as lowdb

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "workspace" / "library.json"
# Written out here, not taken from the code: a derived id must never change between versions.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:tradingsystem:workspace:lowdb-item-id")


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


def sample_items() -> list[dict]:
    return json.loads(SAMPLE.read_text())["items"]


def by_title(database_url: str) -> dict[str, dict]:
    return {row["title"]: row for row in stored_items(database_url).values()}


def test_sample_has_every_old_shape() -> None:
    """The fixture is worth what it covers: each era of ids, metadata, the LowDB categories."""
    items = sample_items()
    ids = [i.get("id") for i in items]
    assert sum(1 for i in ids if i and i.startswith("item-")) == 8
    assert sum(1 for i in ids if i and not i.startswith("item-") and uuid.UUID(i)) == 4
    assert ids.count(None) == 2
    assert any(i.get("metadata") for i in items) and any(i.get("metadata") == {} for i in items)
    assert any(i["updatedAt"] is None for i in items)
    categories = json.loads(SAMPLE.read_text())["categories"]
    assert [c["name"] for c in categories] == ["feature", "bug", "improvement", "documentation", "research", "other"]
    assert all(c["id"] == c["name"] and c["active"] is True for c in categories)


def test_real_old_file_imports_every_item(library: Path, database_url: str, capsys) -> None:
    assert run(library, database_url) == importer.EXIT_OK
    out = capsys.readouterr().out
    rows = by_title(database_url)
    assert len(rows) == 14
    for item in sample_items():
        row = rows[item["title"]]
        old_id = item.get("id")
        if old_id is None:
            assert row["legacy_id"] is None and row["id"].version == 5  # derived from createdAt and title
        elif old_id.startswith("item-"):
            assert (row["id"], row["legacy_id"]) == (uuid.uuid5(NAMESPACE, old_id), old_id)
        else:
            assert (str(row["id"]), row["legacy_id"]) == (old_id, None)  # a UUID is kept
        for field in ("description", "category", "priority", "status", "tags"):
            assert row[field] == item[field], field
        assert json.loads(row["metadata"]) == item.get("metadata", {})
        assert _iso(row["created_at"]) == item["createdAt"]
        assert _iso(row["updated_at"]) == (item["updatedAt"] or item["createdAt"])  # null: never edited
    assert "ids          8 old ids given a UUID derived from them (kept as legacy_id), 4 UUIDs kept, " \
           "2 items without an id given one derived from their createdAt and title" in out
    assert "not stored" not in out  # createdBy/updatedBy are null in a real file
    assert "summary      items: 14 in file: 14 imported, 0 already present, 0 refused" in out
    assert "             categories: 6 in file: 0 imported, 6 already present, 0 refused" in out
    assert "verified     14/14 items and 6/6 categories" in out
    assert "items        14/14 written (14 new)" in out  # progress
    # The backup is an exact copy, named after today's date.
    backup = library.with_name(f"library.json.backup-{date.today():%Y%m%d}")
    assert backup.read_bytes() == SAMPLE.read_bytes()
    assert f"backup       {backup}" in out


def test_derived_ids_are_pinned() -> None:
    """The namespace is part of the data: the same old id gives the same UUID in every version."""
    assert lowdb.LEGACY_NAMESPACE == NAMESPACE
    assert str(lowdb.derived_item_id("item-1762437912345-5u93fox")) == "a6b84fc1-b9ca-5fb0-8483-f08b44a9a567"


def test_rerun_imports_nothing_and_keeps_every_id(library: Path, database_url: str, capsys) -> None:
    assert run(library, database_url) == importer.EXIT_OK
    first = stored_items(database_url)
    capsys.readouterr()
    assert run(library, database_url) == importer.EXIT_OK
    out = capsys.readouterr().out
    assert stored_items(database_url) == first  # same ids (the derived ones too), same rows
    assert "summary      items: 14 in file: 0 imported, 14 already present, 0 refused" in out
    assert "already holds this content" in out  # same-day backup not duplicated
    assert len(list(library.parent.glob("library.json.backup-*"))) == 1


def test_an_item_with_a_broken_field_is_refused_and_the_rest_imported(library: Path, database_url: str,
                                                                    capsys) -> None:
    data = json.loads(library.read_text())
    broken = dict(data["items"][7], id="item-1762600000000-zz9yy8x", priority="urgente")
    data["items"].insert(5, broken)
    library.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    assert run(library, database_url) == importer.EXIT_PARTIAL
    out = capsys.readouterr().out
    assert ('refused      items[5] (id "item-1762600000000-zz9yy8x"): '
            "priority must be one of low, medium, high, critical") in out
    assert "summary      items: 15 in file: 14 imported, 0 already present, 1 refused" in out
    assert len(stored_items(database_url)) == 14
    assert not query(database_url, "SELECT 1 FROM workspace.workspace_items WHERE legacy_id = $1", broken["id"])
    # Fixed in the file, a second run brings exactly that one in.
    data["items"][5]["priority"] = "high"
    library.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    assert run(library, database_url) == importer.EXIT_OK
    assert "15 in file: 1 imported, 14 already present, 0 refused" in capsys.readouterr().out


def test_second_backup_the_same_day_with_other_content_gets_a_time(library: Path, database_url: str) -> None:
    assert run(library, database_url) == importer.EXIT_OK
    data = json.loads(library.read_text())
    data["items"] = data["items"][:2]
    library.write_text(json.dumps(data))
    assert run(library, database_url) == importer.EXIT_OK
    backups = sorted(p.name for p in library.parent.glob("library.json.backup-*"))
    assert len(backups) == 2 and backups[0] == f"library.json.backup-{date.today():%Y%m%d}"
    assert library.with_name(backups[1]).read_bytes() == library.read_bytes()


def test_every_refusal_names_the_position_the_id_and_each_bad_field(tmp_path: Path, database_url: str,
                                                                  capsys) -> None:
    good = [{"id": str(uuid.uuid4()), "title": f"bom {n}", "category": "bug"} for n in range(3)]
    first_bad, unknown_category = str(uuid.uuid4()), str(uuid.uuid4())
    bad = [
        {"id": first_bad, "title": "", "category": "bug", "priority": "urgent"},
        {"id": ["lista"], "title": "id ruim", "category": "bug"},
        {"id": "item-1762437912345-abc1234", "title": "data ruim", "category": "bug", "createdAt": "ontem"},
        {"id": unknown_category, "title": "categoria", "category": "nao-existe"},
        "not an object",
        {"title": "sem id", "category": "bug", "metadata": "texto"},
        {"id": "item-1-a", "title": "nul", "category": "bug", "metadata": {"nota": "a\x00b"}},
        {"id": "x" * 256, "title": "longo", "category": "bug"},
    ]
    items = [good[0], bad[0], good[1], *bad[1:4], good[2], *bad[4:]]
    path = write(tmp_path, {"items": items, "categories": [{"name": "Bad Slug"}, {"name": "nova"}]})
    assert run(path, database_url) == importer.EXIT_PARTIAL
    out = capsys.readouterr().out
    for line in (
        f'items[1] (id "{first_bad}"): title must be 1 to 200 characters; '
        "priority must be one of low, medium, high, critical",
        'items[3] (id ["lista"]): id must be a string (a UUID or an old LowDB id such as item-1730812345678-k3j9x2a)',
        'items[4] (id "item-1762437912345-abc1234"): createdAt must be an ISO 8601 date-time',
        f'items[5] (id "{unknown_category}"): category \'nao-existe\' is not a known category',
        "items[7] (str): entry must be an object",
        'items[8] (no id, title "sem id"): metadata must be an object, got str',
        'items[9] (id "item-1-a"): metadata must not contain NUL characters (\\u0000)',
        f'items[10] (id "{"x" * 58}…): id must be a UUID or an old id of at most 255 characters',
        'categories[0] (name "Bad Slug"): name must be a slug',
    ):
        assert f"refused      {line}" in out, line
    assert "checked      items: 3 to import, 8 refused; categories: 1 to import, 1 refused" in out
    assert "summary      items: 11 in file: 3 imported, 0 already present, 8 refused" in out
    assert set(stored_items(database_url)) == {i["id"] for i in good}
    assert query(database_url, "SELECT name FROM workspace.workspace_categories WHERE name = 'nova'")


def test_metadata_jsonb_cannot_hold_is_refused(tmp_path: Path, database_url: str, capsys) -> None:
    path = tmp_path / "library.json"
    # NaN is what JavaScript's JSON.stringify never writes, but a hand-edited file can hold it.
    path.write_text('{"items": [{"id": "item-1-nan", "title": "nan", "category": "bug", "metadata": {"x": NaN}},'
                    ' {"id": "item-2-big", "title": "grande", "category": "bug", "metadata": {"x": "%s"}},'
                    ' {"id": "item-3-ok", "title": "ok", "category": "bug", "metadata": {"a": {"b": [1, 2.5, null,'
                    ' true, "ç"]}, "n": 123456789012345678901234567890}}]}' % ("y" * 300_000))
    assert run(path, database_url) == importer.EXIT_PARTIAL
    out = capsys.readouterr().out
    assert 'items[0] (id "item-1-nan"): metadata must not contain NaN or Infinity' in out
    assert 'items[1] (id "item-2-big"): metadata must be at most 256 KiB of JSON, got 300,008 bytes' in out
    (row,) = stored_items(database_url).values()
    assert json.loads(row["metadata"]) == {"a": {"b": [1, 2.5, None, True, "ç"]}, "n": 123456789012345678901234567890}


def test_ids_of_every_old_kind(tmp_path: Path, database_url: str, capsys) -> None:
    """Any non-UUID id is an old id (hand-written files, the old API's integer ids); "" and null
    are no id, as the old client's `if (!item.id)` had it; two identical id-less entries both arrive."""
    twin = {"title": "gêmeo", "category": "bug", "createdAt": "2025-11-01T10:00:00.000Z"}
    items = [{"id": 42, "title": "inteiro", "category": "bug"}, {"id": "meu-id", "title": "texto", "category": "bug"},
             {"id": "", "title": "vazio", "category": "bug"}, {"id": None, "title": "nulo", "category": "bug"},
             twin, dict(twin)]
    path = write(tmp_path, {"items": items})
    assert run(path, database_url) == importer.EXIT_OK
    rows = stored_items(database_url)
    legacy = {row["legacy_id"]: row for row in rows.values()}
    assert legacy["42"]["id"] == uuid.uuid5(NAMESPACE, "42") and legacy["meu-id"]["id"] == uuid.uuid5(NAMESPACE, "meu-id")
    assert sorted(r["title"] for r in rows.values() if r["legacy_id"] is None) == ["gêmeo", "gêmeo", "nulo", "vazio"]
    assert "2 old ids given a UUID derived from them (kept as legacy_id), 0 UUIDs kept, 4 items without an id" \
           in capsys.readouterr().out
    assert run(path, database_url) == importer.EXIT_OK  # the id-less ones get the same ids again
    assert stored_items(database_url) == rows


def test_fields_not_stored_are_reported(tmp_path: Path, database_url: str, capsys) -> None:
    items = [{"id": "item-1-a", "title": "a", "category": "bug", "createdBy": "ana", "updatedBy": None},
             {"id": "item-2-b", "title": "b", "category": "bug", "createdBy": "ana", "anexo": "x.pdf"}]
    path = write(tmp_path, {"items": items})
    assert run(path, database_url) == importer.EXIT_OK
    out = capsys.readouterr().out
    assert "not stored   createdBy (2 items): the workspace has no such field; the backup keeps it" in out
    assert "not stored   anexo (1 item)" in out and "updatedBy" not in out
    assert len(stored_items(database_url)) == 2


def test_duplicate_ids_in_the_file_keep_the_first(tmp_path: Path, database_url: str, capsys) -> None:
    shared = str(uuid.uuid4())
    path = write(tmp_path, {"items": [{"id": shared, "title": "primeiro", "category": "bug"},
                                      {"id": shared, "title": "segundo", "category": "bug"},
                                      {"id": "item-7-x", "title": "velho", "category": "bug"},
                                      {"id": "item-7-x", "title": "velho de novo", "category": "bug"}]})
    assert run(path, database_url) == importer.EXIT_PARTIAL
    out = capsys.readouterr().out
    assert f'items[1] (id "{shared}"): id duplicates items[0] (the first one is imported)' in out
    assert 'items[3] (id "item-7-x"): id duplicates items[2] (the first one is imported)' in out
    assert stored_items(database_url)[shared]["title"] == "primeiro"
    assert stored_items(database_url)[str(uuid.uuid5(NAMESPACE, "item-7-x"))]["title"] == "velho"


def test_ids_already_in_the_database_are_left_alone(tmp_path: Path, database_url: str, capsys) -> None:
    existing = str(uuid.uuid4())
    query(database_url, "INSERT INTO workspace.workspace_items (id, title, category) VALUES ($1, 'no banco', 'bug')",
          uuid.UUID(existing))
    path = write(tmp_path, {"items": [{"id": existing, "title": "do arquivo", "category": "bug"},
                                      {"id": str(uuid.uuid4()), "title": "novo", "category": "bug"}]})
    assert run(path, database_url) == importer.EXIT_OK
    assert "2 in file: 1 imported, 1 already present, 0 refused" in capsys.readouterr().out
    assert stored_items(database_url)[existing]["title"] == "no banco"


def test_dry_run_writes_nothing(library: Path, database_url: str, capsys) -> None:
    assert run(library, database_url, "--dry-run") == importer.EXIT_OK
    out = capsys.readouterr().out
    assert "ids          8 old ids given a UUID derived from them" in out
    assert ("dry run      would import 14 items (0 already present, 0 refused) and 0 categories "
            "(6 already present, 0 refused); nothing written") in out
    assert stored_items(database_url) == {}
    assert not list(library.parent.glob("library.json.backup-*"))
    assert run(library, database_url) == importer.EXIT_OK
    capsys.readouterr()
    assert run(library, database_url, "--dry-run") == importer.EXIT_OK
    assert "would import 0 items (14 already present, 0 refused)" in capsys.readouterr().out


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
        # The first LowDB defaults named a category by its label, the slug being the id.
        {"id": "pesquisa-x", "name": "Pesquisa X", "description": "Pesquisa e exploração", "color": "#f59e0b",
         "display_order": 5, "active": True},
    ]
    items = [{"id": str(uuid.uuid4()), "title": "usa alertas", "category": "alertas"}]
    path = write(tmp_path, {"items": items, "categories": categories})
    assert run(path, database_url) == importer.EXIT_PARTIAL
    out = capsys.readouterr().out
    assert 'refused      categories[4] (name "ruim"): color must be a colour like #3B82F6' in out
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
    assert (rows["pesquisa-x"]["display_name"], rows["pesquisa-x"]["color"]) == ("Pesquisa X", "#f59e0b")
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
    assert dry.returncode == 0 and "would import 0 items (14 already present, 0 refused)" in dry.stdout
