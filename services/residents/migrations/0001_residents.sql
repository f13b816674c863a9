-- Households and residents. National ID and phone numbers are stored only
-- encrypted (AES-GCM, services/residents/pii.py) with the id of the key that
-- encrypted them, and found through a keyed hash of the normalised number.
CREATE TABLE households (
    id              uuid        PRIMARY KEY,
    micro_grid_id   uuid        NOT NULL,
    -- The micro-grid's ancestors from the grids service, the city first.
    ancestor_ids    uuid[]      NOT NULL,
    address         text        NOT NULL CHECK (length(address) BETWEEN 1 AND 200),
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX households_micro_grid ON households (micro_grid_id);

CREATE TABLE residents (
    id                  uuid        PRIMARY KEY,
    household_id        uuid        NOT NULL REFERENCES households (id),
    -- The household's micro-grid and its ancestors, copied here (and rewritten
    -- on a move) so area lists, scope checks and leaderboards need no join.
    area_ids            uuid[]      NOT NULL,
    name                text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    pii_key_id          text        NOT NULL,
    national_id_cipher  bytea       NOT NULL,
    national_id_hash    bytea       NOT NULL,
    phone_cipher        bytea       NOT NULL,
    phone_hash          bytea       NOT NULL,
    channels            smallint[]  NOT NULL DEFAULT '{}',
    language            smallint    NOT NULL DEFAULT 1,
    verification_state  smallint    NOT NULL DEFAULT 1,
    verify_time         timestamptz,
    active              boolean     NOT NULL DEFAULT true,
    -- The key service recipient roster: on it when care_update_time is set.
    care_reasons        smallint[]  NOT NULL DEFAULT '{}',
    care_needs          smallint[]  NOT NULL DEFAULT '{}',
    care_note           text        NOT NULL DEFAULT '',
    squad_id            uuid,
    care_update_time    timestamptz,
    create_time         timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX residents_household ON residents (household_id);
CREATE INDEX residents_areas ON residents USING gin (area_ids);
CREATE INDEX residents_phone_hash ON residents (phone_hash);
CREATE INDEX residents_pii_key ON residents (pii_key_id);
-- One active resident per national ID number.
CREATE UNIQUE INDEX residents_national_id_active
    ON residents (national_id_hash) WHERE active;
CREATE INDEX residents_national_id_hash ON residents (national_id_hash);
CREATE INDEX residents_roster ON residents USING gin (area_ids)
    WHERE care_update_time IS NOT NULL AND active;
