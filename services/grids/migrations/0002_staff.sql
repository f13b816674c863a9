-- Helpers: everyone dispatch can ask. kind: 1 grid worker, 2 volunteer,
-- 3 cadre, 4 department contact, 5 squad member (HelperKind in the proto).
-- Only ids of people are kept here; names live with the residents service.
CREATE TABLE squads (
    id           uuid        PRIMARY KEY,
    village_id   uuid        NOT NULL REFERENCES areas (id),
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    create_time  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT squads_names_unique UNIQUE (village_id, name)
);

CREATE TABLE helpers (
    id                  uuid        PRIMARY KEY,
    kind                smallint    NOT NULL CHECK (kind BETWEEN 1 AND 5),
    person_id           text        NOT NULL CHECK (length(person_id) BETWEEN 1 AND 128),
    supervisor_id       uuid        REFERENCES helpers (id),
    department_kind     smallint    NOT NULL DEFAULT 0,
    handled_categories  smallint[]  NOT NULL DEFAULT '{}',
    squad_id            uuid        REFERENCES squads (id),
    member_kind         smallint    NOT NULL DEFAULT 0,
    -- 1 on duty, 2 off duty, 3 busy (Availability in the proto).
    availability        smallint    NOT NULL DEFAULT 2 CHECK (availability BETWEEN 1 AND 3),
    -- Open errands and cases in hand; dispatch prefers the least loaded.
    load                integer     NOT NULL DEFAULT 0 CHECK (load >= 0),
    active              boolean     NOT NULL DEFAULT true,
    create_time         timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT helpers_squad_members_have_a_squad CHECK ((kind = 5) = (squad_id IS NOT NULL))
);

-- The areas a helper serves, with the village above each (NULL above
-- village level), so that ranking reads a micro-grid's grid, the micro-grid
-- itself, its village and the village's other grids with index lookups.
CREATE TABLE helper_areas (
    helper_id   uuid     NOT NULL REFERENCES helpers (id) ON DELETE CASCADE,
    area_id     uuid     NOT NULL REFERENCES areas (id),
    kind        smallint NOT NULL,
    village_id  uuid     REFERENCES areas (id),
    PRIMARY KEY (area_id, kind, helper_id)
);

CREATE INDEX helper_areas_village ON helper_areas (village_id, kind) WHERE village_id IS NOT NULL;
CREATE INDEX helper_areas_helper ON helper_areas (helper_id);
CREATE INDEX helpers_person ON helpers (person_id);
CREATE INDEX helpers_squad ON helpers (squad_id) WHERE squad_id IS NOT NULL;
