-- Merchants, their offers and life services, bookings and redemptions.
-- A merchant's contact phone is stored only encrypted (AES-GCM with the
-- residents' keyring, services/residents/pii.py): a sole trader's number is
-- personal data.
CREATE TABLE merchants (
    id              uuid        PRIMARY KEY,
    name            text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    village_id      uuid        NOT NULL,
    -- The village and its ancestors from the grids service, the city first.
    area_ids        uuid[]      NOT NULL,
    category        smallint    NOT NULL,
    legal_form      smallint    NOT NULL,
    -- 1 pending, 2 verified, 3 suspended (MerchantState).
    state           smallint    NOT NULL DEFAULT 1 CHECK (state BETWEEN 1 AND 3),
    accepts_points  boolean     NOT NULL,
    opens           text        NOT NULL,
    closes          text        NOT NULL,
    pii_key_id      text        NOT NULL,
    phone_cipher    bytea       NOT NULL,
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX merchants_areas ON merchants USING gin (area_ids);
CREATE INDEX merchants_name ON merchants (name, id);

CREATE TABLE offers (
    id           uuid        PRIMARY KEY,
    merchant_id  uuid        NOT NULL REFERENCES merchants (id),
    title        text        NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    points       bigint      NOT NULL CHECK (points > 0),
    -- Items left; a redemption takes one while pending and gives it back
    -- when released.
    stock        integer     NOT NULL CHECK (stock >= 0),
    -- 1 open, 2 withdrawn (OfferState).
    state        smallint    NOT NULL DEFAULT 1 CHECK (state IN (1, 2)),
    create_time  timestamptz NOT NULL DEFAULT now(),
    update_time  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX offers_merchant ON offers (merchant_id, create_time, id);

CREATE TABLE life_services (
    id           uuid        PRIMARY KEY,
    merchant_id  uuid        NOT NULL REFERENCES merchants (id),
    title        text        NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    kind         smallint    NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX life_services_merchant ON life_services (merchant_id);

CREATE TABLE bookings (
    id               uuid        PRIMARY KEY,
    life_service_id  uuid        NOT NULL REFERENCES life_services (id),
    merchant_id      uuid        NOT NULL REFERENCES merchants (id),
    resident_id      uuid        NOT NULL,
    slot_time        timestamptz NOT NULL,
    -- BookingState: 1 requested, 2 accepted, 3 declined, 4 completed,
    -- 5 cancelled.
    state            smallint    NOT NULL DEFAULT 1 CHECK (state BETWEEN 1 AND 5),
    create_time      timestamptz NOT NULL DEFAULT now(),
    update_time      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX bookings_resident ON bookings (resident_id, create_time DESC, id);
CREATE INDEX bookings_merchant ON bookings (merchant_id, create_time DESC, id);

-- Written by RedemptionWorkflow's steps once the points are held; the
-- workflow decides, this table is what residents and merchants read.
CREATE TABLE redemptions (
    id                uuid        PRIMARY KEY,
    offer_id          uuid        NOT NULL REFERENCES offers (id),
    merchant_id       uuid        NOT NULL REFERENCES merchants (id),
    resident_id       uuid        NOT NULL,
    points            bigint      NOT NULL CHECK (points > 0),
    -- RedemptionState: 1 pending, 2 committed, 3 released.
    state             smallint    NOT NULL DEFAULT 1 CHECK (state BETWEEN 1 AND 3),
    -- ReleaseReason: 1 expired, 2 refused, 3 cancelled.
    release_reason    smallint,
    hold_id           uuid        NOT NULL UNIQUE,
    -- Six digits shown at the till; unique enough among one merchant's
    -- pending redemptions, and FindRedemption says so when it is not.
    code              text        NOT NULL CHECK (code ~ '^[0-9]{6}$'),
    confirm_deadline  timestamptz NOT NULL,
    create_time       timestamptz NOT NULL DEFAULT now(),
    settle_time       timestamptz,
    CONSTRAINT redemptions_reason CHECK ((state = 3) = (release_reason IS NOT NULL)),
    CONSTRAINT redemptions_settled CHECK ((state = 1) = (settle_time IS NULL))
);

CREATE INDEX redemptions_resident ON redemptions (resident_id, create_time DESC, id);
CREATE INDEX redemptions_merchant ON redemptions (merchant_id, create_time DESC, id);
CREATE INDEX redemptions_settled ON redemptions (merchant_id, settle_time)
    WHERE state = 2;
CREATE INDEX redemptions_code ON redemptions (merchant_id, code) WHERE state = 1;
