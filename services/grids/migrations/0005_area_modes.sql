-- Peacetime or wartime per area. mode: 1 peacetime, 2 wartime (Mode in the
-- proto). A row is the switch in force on that area; the effective mode of
-- any area is its nearest switched ancestor's (or its own). A switch clears
-- the rows beneath it, so the newest decision for an area always holds.
CREATE TABLE area_modes (
    area_id      uuid        PRIMARY KEY REFERENCES areas (id),
    mode         smallint    NOT NULL CHECK (mode IN (1, 2)),
    reason       text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    switched_by  text        NOT NULL,
    switch_time  timestamptz NOT NULL DEFAULT now()
);

-- Every switch ever made, for operators and the annual report.
CREATE TABLE area_mode_switches (
    id           uuid        PRIMARY KEY,
    area_id      uuid        NOT NULL REFERENCES areas (id),
    mode         smallint    NOT NULL CHECK (mode IN (1, 2)),
    reason       text        NOT NULL,
    switched_by  text        NOT NULL,
    switch_time  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX area_mode_switches_area ON area_mode_switches (area_id, switch_time);
