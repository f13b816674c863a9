-- What the casework front door owns: the deadlines of each case category and
-- the cases it started, with the open case a duplicate report was linked to.
-- The case record and its timeline live in the grids schema.

-- category: a cloudark.grids.v1.CaseCategory value.
CREATE TABLE category_rules (
    category           integer PRIMARY KEY,
    verify_hours       integer NOT NULL CHECK (verify_hours > 0),
    rectify_days       integer NOT NULL CHECK (rectify_days > 0),
    -- The reminder goes this many hours before the rectification deadline.
    reminder_hours     integer NOT NULL CHECK (reminder_hours >= 0),
    acknowledge_hours  integer NOT NULL CHECK (acknowledge_hours > 0),
    dispute_days       integer NOT NULL CHECK (dispute_days >= 0),
    update_time        timestamptz NOT NULL DEFAULT now()
);

-- Fire hazards are verified within a day and fixed within a week; a quarrel
-- needs someone at once; the rest within two days and two weeks.
INSERT INTO category_rules
    (category, verify_hours, rectify_days, reminder_hours, acknowledge_hours,
     dispute_days)
VALUES
    (101, 24, 7, 24, 48, 7),
    (102, 24, 7, 24, 48, 7),
    (199, 48, 14, 24, 48, 7),
    (201, 2, 7, 24, 48, 7),
    (202, 24, 7, 24, 48, 7),
    (203, 24, 7, 24, 48, 7),
    (204, 24, 7, 24, 48, 7),
    (205, 48, 14, 24, 48, 7),
    (206, 24, 7, 24, 48, 7),
    (207, 24, 7, 24, 48, 7),
    (208, 48, 14, 24, 72, 7),
    (301, 24, 7, 24, 48, 7),
    (401, 48, 14, 24, 72, 7);

CREATE TABLE cases (
    -- The grids service's case id; the workflow is case-<id>.
    id             uuid PRIMARY KEY,
    category       integer NOT NULL REFERENCES category_rules (category),
    source         integer NOT NULL,
    micro_grid_id  uuid NOT NULL,
    grid_id        uuid NOT NULL,
    village_id     uuid NOT NULL,
    town_id        uuid NOT NULL,
    -- A person or system id, never a name.
    reporter_id    text NOT NULL,
    duplicate_of   uuid REFERENCES cases (id),
    create_time    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX cases_duplicate_of ON cases (duplicate_of)
    WHERE duplicate_of IS NOT NULL;
