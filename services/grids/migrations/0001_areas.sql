-- The administrative hierarchy: city > town > village > grid > micro-grid.
-- kind: 1 city, 2 town, 3 village, 4 grid, 5 micro-grid (AreaKind in the proto).
CREATE TABLE areas (
    id            uuid        PRIMARY KEY,
    kind          smallint    NOT NULL CHECK (kind BETWEEN 1 AND 5),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    parent_id     uuid        REFERENCES areas (id),
    code          text        UNIQUE,
    -- Every ancestor's id, the city first: area reports and scope checks read
    -- a whole subtree with one indexed lookup.
    ancestor_ids  uuid[]      NOT NULL DEFAULT '{}',
    create_time   timestamptz NOT NULL DEFAULT now(),
    update_time   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT areas_city_has_no_parent CHECK ((kind = 1) = (parent_id IS NULL)),
    CONSTRAINT areas_sibling_names_unique UNIQUE NULLS NOT DISTINCT (parent_id, name)
);

-- Children of one parent in name order, for keyset pagination.
CREATE INDEX areas_children ON areas (parent_id, name, id);
CREATE INDEX areas_ancestors ON areas USING gin (ancestor_ids);
