-- Categories as the old service had them: `name` is the primary key (the old API answered it as
-- `id`), plus the old `icon` and `created_by` columns, and a colour check.
--
-- The uuid `id` of 001 was never a key for anything (items reference the name, the API looks
-- categories up by name), so it is dropped rather than kept beside the name.

ALTER TABLE workspace.workspace_items DROP CONSTRAINT workspace_items_category_fkey;
ALTER TABLE workspace.workspace_categories DROP CONSTRAINT workspace_categories_pkey;
ALTER TABLE workspace.workspace_categories DROP COLUMN id;
ALTER TABLE workspace.workspace_categories DROP CONSTRAINT workspace_categories_name_key;
ALTER TABLE workspace.workspace_categories ADD CONSTRAINT workspace_categories_pkey PRIMARY KEY (name);
ALTER TABLE workspace.workspace_items ADD CONSTRAINT workspace_items_category_fkey
    FOREIGN KEY (category) REFERENCES workspace.workspace_categories (name) ON UPDATE CASCADE;

ALTER TABLE workspace.workspace_categories
    ADD COLUMN icon       text CHECK (length(icon) BETWEEN 1 AND 100),
    ADD COLUMN created_by text CHECK (length(created_by) BETWEEN 1 AND 255);

-- Until now the API checked colours with a pattern whose `$` also matched before a final
-- newline, so "#3B82F6\n" could be stored. Repair such values (surrounding whitespace removed,
-- or the default colour when what is left is still not #RRGGBB), then let the database refuse them.
UPDATE workspace.workspace_categories
SET color = CASE WHEN btrim(color, E' \t\r\n') ~ '^#[0-9A-Fa-f]{6}$' THEN btrim(color, E' \t\r\n')
                 ELSE '#6B7280' END
WHERE color !~ '^#[0-9A-Fa-f]{6}$';
ALTER TABLE workspace.workspace_categories
    ADD CONSTRAINT workspace_categories_color_check CHECK (color ~ '^#[0-9A-Fa-f]{6}$');

