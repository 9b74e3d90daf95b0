"""Items imported from the old LowDB file, through the API: metadata served, old ids resolved.

The old dashboard only addresses items by ids it has just listed (no stored ids, no item URLs),
so after the import it uses UUIDs; a page left open across the switch still holds `item-…` ids,
and GET/PUT/DELETE /items/item-… reach the item imported under that id.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from workspace_api import importer

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "workspace" / "library.json"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:tradingsystem:workspace:lowdb-item-id")
ITEMS = json.loads(SAMPLE.read_text())["items"]
WITH_METADATA = next(i for i in ITEMS if i.get("metadata") and i["id"].startswith("item-"))
OLD_IDS = [i["id"] for i in ITEMS if (i.get("id") or "").startswith("item-")]


@pytest.fixture
async def imported(client: AsyncTestClient, database_url: str, tmp_path: Path) -> AsyncTestClient:
    path = tmp_path / "library.json"
    shutil.copy(SAMPLE, path)
    assert await importer.run(path, database_url, dry_run=False, say=lambda _: None) == importer.EXIT_OK
    return client


async def test_metadata_is_served_as_the_file_held_it(imported: AsyncTestClient) -> None:
    listed = {i["title"]: i for i in (await imported.get("/api/items")).json()["data"]}
    assert len(listed) == len(ITEMS)
    for item in ITEMS:
        assert listed[item["title"]]["metadata"] == item.get("metadata", {}), item["title"]
    one = (await imported.get(f"/api/items/{uuid.uuid5(NAMESPACE, WITH_METADATA['id'])}")).json()["data"]
    assert one["metadata"] == WITH_METADATA["metadata"] and one["metadata"]


@pytest.mark.parametrize("prefix", ["/api/items", "/items"])
async def test_an_old_id_reaches_the_imported_item(imported: AsyncTestClient, prefix: str) -> None:
    old_id = OLD_IDS[0]
    response = await imported.get(f"{prefix}/{old_id}")
    assert response.status_code == 200
    item = response.json()["data"]
    assert item["id"] == str(uuid.uuid5(NAMESPACE, old_id))  # the answer carries the UUID to use from now on
    assert response.headers["etag"] == (await imported.get(f"{prefix}/{item['id']}")).headers["etag"]

    # An edit from a page still holding the old id (If-Match works the same)
    updated = await imported.put(f"{prefix}/{old_id}", json={"status": "completed"},
                                 headers={"If-Match": response.headers["etag"]})
    assert updated.status_code == 200 and updated.json()["data"]["status"] == "completed"
    assert updated.json()["data"]["id"] == item["id"]
    stale = await imported.put(f"{prefix}/{old_id}", json={"status": "new"}, headers={"If-Match": response.headers["etag"]})
    assert stale.status_code == 412

    deleted = await imported.delete(f"{prefix}/{old_id}")
    assert deleted.status_code == 200
    assert (await imported.get(f"{prefix}/{item['id']}")).status_code == 404
    assert (await imported.get(f"{prefix}/{old_id}")).status_code == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_an_unknown_old_id_is_404_and_other_strings_still_400(client: AsyncTestClient, method: str) -> None:
    body = {"title": "x"} if method == "PUT" else None
    missing = await client.request(method, "/api/items/item-1762437912345-zzzzzzz", json=body)
    assert missing.status_code == 404 and missing.json()["error"] == "Item not found"
    for malformed in ("stats", "item-", "item-abc-def", "ITEM-1-A"):
        response = await client.request(method, f"/api/items/{malformed}", json=body)
        assert response.status_code == 400, malformed
        assert response.json()["details"] == ["id must be a UUID"]


async def test_an_imported_items_metadata_is_replaced_by_a_put_that_gives_it(imported: AsyncTestClient) -> None:
    """As any item's (tests/workspace/test_item_metadata.py): a PUT without metadata keeps what the
    file held, one with metadata replaces it whole."""
    uid = uuid.uuid5(NAMESPACE, WITH_METADATA["id"])
    item = (await imported.get(f"/api/items/{uid}")).json()["data"]
    kept = (await imported.put(f"/api/items/{uid}", json={"title": "Novo"})).json()["data"]
    assert kept["title"] == "Novo" and kept["metadata"] == WITH_METADATA["metadata"]
    replaced = (await imported.put(f"/api/items/{uid}", json={**item, "metadata": {"x": 1}})).json()["data"]
    assert replaced["metadata"] == {"x": 1}
    by_old_id = (await imported.put(f"/api/items/{WITH_METADATA['id']}", json={"metadata": {"y": 2}})).json()["data"]
    assert by_old_id["id"] == str(uid) and by_old_id["metadata"] == {"y": 2}
