-- Workspace: items and the categories they belong to (old LowDB/PostgreSQL contract).

CREATE SCHEMA IF NOT EXISTS workspace;

CREATE TABLE workspace.workspace_categories (
    id            uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    name          text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9-]+$' AND length(name) <= 100),
    display_name  text        NOT NULL,
    description   text        NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    color         text        NOT NULL DEFAULT '#6B7280',
    display_order integer     NOT NULL DEFAULT 0,
    is_active     boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workspace.workspace_items (
    id          uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    title       text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description text        NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    category    text        NOT NULL REFERENCES workspace.workspace_categories (name) ON UPDATE CASCADE,
    priority    text        NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    status      text        NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'review', 'in-progress', 'completed', 'rejected')),
    tags        text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX workspace_items_created_idx ON workspace.workspace_items (created_at DESC, id);
CREATE INDEX workspace_items_category_idx ON workspace.workspace_items (category);

-- The LowDB defaults, then the slugs the old frontend used.
INSERT INTO workspace.workspace_categories (name, display_name, description, color, display_order) VALUES
    ('feature',        'Feature',          'New functionality',                 '#3B82F6', 1),
    ('bug',            'Bug',              'Something is broken',               '#EF4444', 2),
    ('improvement',    'Improvement',      'Make something better',             '#10B981', 3),
    ('documentation',  'Documentation',    'Docs and guides',                   '#8B5CF6', 4),
    ('research',       'Research',         'Investigation and analysis',        '#F59E0B', 5),
    ('other',          'Other',            'Anything else',                     '#6B7280', 6),
    ('documentacao',   'Documentação',     'Documentação do sistema',           '#8B5CF6', 7),
    ('coleta-dados',   'Coleta de Dados',  'Coleta e ingestão de dados',        '#0EA5E9', 8),
    ('banco-dados',    'Banco de Dados',   'Banco de dados e armazenamento',    '#14B8A6', 9),
    ('analise-dados',  'Análise de Dados', 'Análise de dados e sinais',         '#F97316', 10),
    ('gestao-riscos',  'Gestão de Riscos', 'Gestão de riscos',                  '#DC2626', 11),
    ('dashboard',      'Dashboard',        'Dashboard e interface',             '#6366F1', 12)
ON CONFLICT (name) DO NOTHING;
