-- Errands: the store of record for GetErrand and ListErrands. The front door
-- inserts the errand; its ErrandWorkflow records every later step through
-- RecordErrandStep, keyed by step, so a replayed step writes nothing twice.
CREATE TABLE errands (
    id                  uuid        PRIMARY KEY,
    resident_id         uuid        NOT NULL,
    kind                smallint    NOT NULL,
    details             text        NOT NULL CHECK (length(details) BETWEEN 1 AND 500),
    source_reference    text        NOT NULL DEFAULT '',
    micro_grid_id       uuid        NOT NULL,
    -- The micro-grid's ancestors, the city first, then the micro-grid itself.
    area_ids            uuid[]      NOT NULL,
    status              smallint    NOT NULL,
    due_time            timestamptz NOT NULL,
    breached            boolean     NOT NULL DEFAULT false,
    offered_helper_ids  uuid[]      NOT NULL DEFAULT '{}',
    helper_id           uuid,
    delivery_note       text        NOT NULL DEFAULT '',
    photo_ref           text        NOT NULL DEFAULT '',
    rating              smallint    NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    rating_comment      text        NOT NULL DEFAULT '',
    create_time         timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now(),
    accept_time         timestamptz,
    pick_up_time        timestamptz,
    deliver_time        timestamptz,
    cancel_time         timestamptz
);

CREATE INDEX errands_resident ON errands (resident_id, create_time DESC, id DESC);
CREATE INDEX errands_helper ON errands (helper_id, create_time DESC, id DESC);
CREATE INDEX errands_offered ON errands USING gin (offered_helper_ids);
CREATE INDEX errands_areas ON errands USING gin (area_ids);
CREATE INDEX errands_newest ON errands (create_time DESC, id DESC);

CREATE TABLE errand_steps (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    errand_id   uuid        NOT NULL REFERENCES errands (id),
    step_key    text        NOT NULL CHECK (length(step_key) BETWEEN 1 AND 100),
    kind        smallint    NOT NULL,
    helper_id   uuid,
    note        text        NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now(),
    UNIQUE (errand_id, step_key)
);
