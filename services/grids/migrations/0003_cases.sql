-- Cases and patrols, and the yearly roll-ups the annual report reads.
CREATE TABLE patrols (
    id             uuid        PRIMARY KEY,
    -- NULL for imported history, whose workers the legacy system named.
    worker_id      uuid        REFERENCES helpers (id),
    micro_grid_id  uuid        NOT NULL REFERENCES areas (id),
    household_id   text,
    -- 1 patrol, 2 home visit (PatrolKind in the proto).
    kind           smallint    NOT NULL CHECK (kind IN (1, 2)),
    patrol_time    timestamptz NOT NULL,
    notes          text        NOT NULL DEFAULT '',
    -- The legacy system's id, for imported rows.
    external_id    text        UNIQUE,
    create_time    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX patrols_place ON patrols (micro_grid_id, patrol_time DESC, id DESC);
CREATE INDEX patrols_time ON patrols (patrol_time DESC, id DESC);
CREATE INDEX patrols_worker ON patrols (worker_id, patrol_time DESC, id DESC)
    WHERE worker_id IS NOT NULL;

CREATE TABLE cases (
    id               uuid        PRIMARY KEY,
    -- CaseCategory in the proto: the group is category / 100.
    category         smallint    NOT NULL CHECK (category > 100),
    source           smallint    NOT NULL CHECK (source BETWEEN 1 AND 5),
    micro_grid_id    uuid        NOT NULL REFERENCES areas (id),
    latitude         double precision,
    longitude        double precision,
    description      text        NOT NULL DEFAULT '',
    attachment_refs  text[]      NOT NULL DEFAULT '{}',
    reporter_id      text        NOT NULL DEFAULT '',
    assignee_id      text        NOT NULL DEFAULT '',
    status           smallint    NOT NULL CHECK (status BETWEEN 1 AND 7),
    patrol_id        uuid        REFERENCES patrols (id),
    external_id      text        UNIQUE,
    report_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cases_coordinates_paired CHECK ((latitude IS NULL) = (longitude IS NULL))
);

CREATE INDEX cases_place ON cases (micro_grid_id, report_time DESC, id DESC);
CREATE INDEX cases_time ON cases (report_time DESC, id DESC);
CREATE INDEX cases_reporter ON cases (reporter_id, report_time DESC, id DESC)
    WHERE reporter_id <> '';
CREATE INDEX cases_patrol ON cases (patrol_id) WHERE patrol_id IS NOT NULL;

-- One row per change of a case; seq orders them, step_key makes a replayed
-- workflow step a no-op.
CREATE TABLE case_timeline (
    case_id   uuid        NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    seq       integer     NOT NULL,
    status    smallint    NOT NULL,
    actor_id  text        NOT NULL DEFAULT '',
    time      timestamptz NOT NULL DEFAULT now(),
    note      text        NOT NULL DEFAULT '',
    step_key  text        NOT NULL,
    PRIMARY KEY (case_id, seq),
    CONSTRAINT case_timeline_step_once UNIQUE (case_id, step_key)
);

-- Counts per year and micro-grid: a report sums the micro-grids of its
-- area (a few thousand rows at most) instead of scanning the year's cases.
-- Keyed by micro-grid, so a moved area takes its history with it.
CREATE TABLE case_counts (
    year           smallint NOT NULL,
    micro_grid_id  uuid     NOT NULL REFERENCES areas (id),
    category       smallint NOT NULL,
    cases          bigint   NOT NULL,
    PRIMARY KEY (year, micro_grid_id, category)
);

CREATE TABLE patrol_counts (
    year           smallint NOT NULL,
    micro_grid_id  uuid     NOT NULL REFERENCES areas (id),
    patrols        bigint   NOT NULL,
    PRIMARY KEY (year, micro_grid_id)
);
