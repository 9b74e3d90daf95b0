-- Items imported from the old LowDB file: their old id and their metadata.
--
-- The old LowDB client named items `item-<epoch ms>-<random>` (and the old API dropped any id a
-- client sent), so those items get a UUID derived from the old id (the importer's UUIDv5) and
-- keep the old id here, unique, so it stays findable (GET /api/items/item-… resolves it). NULL
-- for every item created here or imported under a UUID it already had.
--
-- `metadata` is the old items' free-form object (the old API stored it as jsonb and answered it
-- in every item, `{}` when empty).
--
-- workspace_items is a plain table on TimescaleDB too (never a hypertable), so a unique index
-- on a column other than a partition column is fine there. Adding a column with a constant
-- default rewrites nothing.

ALTER TABLE workspace.workspace_items
    ADD COLUMN legacy_id text CHECK (length(legacy_id) BETWEEN 1 AND 255),
    ADD COLUMN metadata  jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object');

CREATE UNIQUE INDEX workspace_items_legacy_id_key ON workspace.workspace_items (legacy_id);
