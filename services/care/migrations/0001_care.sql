-- Care plans of key service recipients, the visits squads record, and
-- campaigns. People are ids only (residents and grids helper ids); names and
-- numbers stay with the residents service. area_ids is the micro-grid's
-- ancestors and the micro-grid itself, [city, town, village, grid,
-- micro-grid], so figures by area read one indexed lookup.
CREATE TABLE care_plans (
    recipient_id       uuid        PRIMARY KEY,
    squad_id           uuid        NOT NULL,
    member_id          uuid        NOT NULL,
    village_id         uuid        NOT NULL,
    micro_grid_id      uuid        NOT NULL,
    area_ids           uuid[]      NOT NULL,
    lives_alone        boolean     NOT NULL,
    visit_every_days   integer     NOT NULL DEFAULT 7
                       CHECK (visit_every_days BETWEEN 1 AND 365),
    -- ContactChannel in the proto; minutes after midnight, China Standard Time.
    contact_channel    smallint    NOT NULL DEFAULT 0,
    contact_from       smallint    NOT NULL DEFAULT 0 CHECK (contact_from BETWEEN 0 AND 1439),
    contact_to         smallint    NOT NULL DEFAULT 0 CHECK (contact_to BETWEEN 0 AND 1439),
    last_visit_time    timestamptz,
    create_time        timestamptz NOT NULL DEFAULT now(),
    update_time        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX care_plans_squad ON care_plans (squad_id);

-- kind: NeedKind in the proto (1 medicine, 2 meals, 3 daily supplies).
CREATE TABLE regular_needs (
    recipient_id        uuid        NOT NULL REFERENCES care_plans ON DELETE CASCADE,
    kind                smallint    NOT NULL CHECK (kind BETWEEN 1 AND 3),
    every_days          integer     NOT NULL CHECK (every_days BETWEEN 1 AND 365),
    last_delivery_time  timestamptz,
    create_time         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipient_id, kind)
);

-- outcome: 1 done, 2 not at home, 3 needs help (VisitOutcome).
CREATE TABLE visits (
    id               uuid        PRIMARY KEY,
    recipient_id     uuid        NOT NULL REFERENCES care_plans,
    squad_id         uuid        NOT NULL,
    member_id        uuid        NOT NULL,
    outcome          smallint    NOT NULL CHECK (outcome BETWEEN 1 AND 3),
    delivered_needs  smallint[]  NOT NULL DEFAULT '{}',
    case_id          uuid,
    errand_id        uuid,
    area_ids         uuid[]      NOT NULL,
    visit_time       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX visits_recipient ON visits (recipient_id, visit_time);
CREATE INDEX visits_areas ON visits USING gin (area_ids);

-- kind: CampaignKind (1 care package, 2 medicine, 3 contact card, 4 leaflet).
CREATE TABLE campaigns (
    id           uuid        PRIMARY KEY,
    kind         smallint    NOT NULL CHECK (kind BETWEEN 1 AND 4),
    village_ids  uuid[]      NOT NULL,
    due_time     timestamptz NOT NULL,
    started_by   text        NOT NULL,
    workflow_id  text        NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now()
);

-- A village's roster is enrolled page by page; done when its last page is in.
CREATE TABLE campaign_villages (
    campaign_id  uuid    NOT NULL REFERENCES campaigns,
    village_id   uuid    NOT NULL,
    enrolled     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (campaign_id, village_id)
);

-- status: 1 pending, 2 delivered, 3 refused (RecipientStatus).
CREATE TABLE campaign_recipients (
    campaign_id    uuid        NOT NULL REFERENCES campaigns,
    recipient_id   uuid        NOT NULL,
    village_id     uuid        NOT NULL,
    micro_grid_id  uuid        NOT NULL,
    area_ids       uuid[]      NOT NULL,
    status         smallint    NOT NULL DEFAULT 1 CHECK (status BETWEEN 1 AND 3),
    recorded_by    text        NOT NULL DEFAULT '',
    update_time    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, recipient_id)
);

CREATE INDEX campaign_recipients_status ON campaign_recipients (campaign_id, status, recipient_id);
CREATE INDEX campaign_recipients_areas ON campaign_recipients USING gin (area_ids);
