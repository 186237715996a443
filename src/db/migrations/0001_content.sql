-- Portal content of one tenant: OZG topic categories, Lebenslagen (life situations),
-- services, facilities and staff contacts, with publication state and search vectors.
--
-- Runs inside the tenant's own schema: search_path = <tenant schema>, portalctl_ext
-- (portalctl_ext holds the shared pg_trgm extension). Never names a schema itself.

CREATE TABLE category (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    title       text NOT NULL,
    position    integer NOT NULL DEFAULT 0
);

CREATE TABLE lebenslage (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    title       text NOT NULL,
    description text NOT NULL DEFAULT '',
    icon        text,
    position    integer NOT NULL DEFAULT 0
);

CREATE TABLE facility (
    id            text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name          text NOT NULL,
    address       text NOT NULL DEFAULT '',
    opening_hours text NOT NULL DEFAULT '',
    phone         text,
    email         text,
    url           text,
    published     boolean NOT NULL DEFAULT false,
    search        tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('german', name), 'A') ||
        setweight(to_tsvector('german', address || ' ' || opening_hours), 'C')
    ) STORED
);

CREATE TABLE staff (
    id             text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name           text NOT NULL,
    position_title text NOT NULL DEFAULT '',
    topics         text NOT NULL DEFAULT '',
    facility_id    text REFERENCES facility (id) ON DELETE SET NULL,
    phone          text,
    email          text,
    published      boolean NOT NULL DEFAULT false,
    search         tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('german', name), 'A') ||
        setweight(to_tsvector('german', position_title || ' ' || topics), 'B')
    ) STORED
);

CREATE TABLE service (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    title           text NOT NULL,
    summary         text NOT NULL DEFAULT '',
    description     text NOT NULL DEFAULT '',
    category_id     text REFERENCES category (id) ON DELETE SET NULL,
    -- Zuständige Stelle: the office responsible.
    office          text NOT NULL DEFAULT '',
    facility_id     text REFERENCES facility (id) ON DELETE SET NULL,
    costs           text NOT NULL DEFAULT '',
    documents       text[] NOT NULL DEFAULT '{}',
    -- Online application: a link, or the external portal the service lives on
    -- (e.g. the state's business service portal).
    online_url      text,
    external_portal text,
    trust_level     text NOT NULL DEFAULT 'basisregistrierung'
                    CHECK (trust_level IN ('basisregistrierung', 'substantiell', 'hoch')),
    -- Nachnutzung: where an adopted description came from.
    origin_tenant   text,
    origin_service  text,
    published       boolean NOT NULL DEFAULT false,
    published_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    search          tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('german', title), 'A') ||
        setweight(to_tsvector('german', summary), 'B') ||
        setweight(to_tsvector('german', description || ' ' || office), 'C')
    ) STORED
);

CREATE TABLE service_lebenslage (
    service_id    text NOT NULL REFERENCES service (id) ON DELETE CASCADE,
    lebenslage_id text NOT NULL REFERENCES lebenslage (id) ON DELETE CASCADE,
    PRIMARY KEY (service_id, lebenslage_id)
);

CREATE INDEX service_search_idx ON service USING gin (search);
CREATE INDEX service_title_trgm_idx ON service USING gin (title gin_trgm_ops);
CREATE INDEX service_published_idx ON service (published, title);
CREATE INDEX facility_search_idx ON facility USING gin (search);
CREATE INDEX facility_name_trgm_idx ON facility USING gin (name gin_trgm_ops);
CREATE INDEX staff_search_idx ON staff USING gin (search);
CREATE INDEX staff_name_trgm_idx ON staff USING gin (name gin_trgm_ops);
