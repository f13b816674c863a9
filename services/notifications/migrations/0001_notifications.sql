-- Notifications, their deliveries and what the providers recorded. Only ids
-- are stored about people: never names, phone or ID numbers.
CREATE TABLE templates (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- By language ("zh", "en"); variables are written {name}.
    titles       jsonb       NOT NULL,
    bodies       jsonb       NOT NULL,
    variables    text[]      NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notifications (
    id                      uuid        PRIMARY KEY,
    sender_id               text        NOT NULL,
    template_id             uuid        REFERENCES templates (id),
    variables               jsonb       NOT NULL DEFAULT '{}',
    -- Rendered once at send time, by language.
    titles                  jsonb       NOT NULL,
    bodies                  jsonb       NOT NULL,
    -- The Audience message as sent, so the sender can see what was asked.
    audience                bytea       NOT NULL,
    channels                smallint[]  NOT NULL,
    urgency                 smallint    NOT NULL,
    fallback_after_seconds  integer     NOT NULL DEFAULT 0,
    alert_grid_worker       boolean     NOT NULL DEFAULT false,
    reference               text        NOT NULL DEFAULT '',
    quiet_start_minute      smallint,
    quiet_end_minute        smallint,
    expire_time             timestamptz,
    recipients              integer     NOT NULL,
    create_time             timestamptz NOT NULL DEFAULT now(),
    -- Set once its workflow is known to exist; a notification left false
    -- (its process died between commit and start) is started at start-up.
    workflow_started        boolean     NOT NULL DEFAULT false
);

CREATE INDEX notifications_sender ON notifications (sender_id, create_time);
CREATE INDEX notifications_unstarted ON notifications (create_time)
    WHERE NOT workflow_started;

-- One row per (notification, recipient, channel, purpose): the unique key
-- is what makes a repeated send, a retried activity or a restarted process
-- unable to deliver twice.
CREATE TABLE deliveries (
    id                 uuid        PRIMARY KEY,
    notification_id    uuid        NOT NULL REFERENCES notifications (id),
    -- Order within the notification; the workflow pages by it.
    seq                bigint      NOT NULL,
    purpose            smallint    NOT NULL,
    recipient_kind     smallint    NOT NULL,
    -- A resident or helper id, a micro-grid id (group chat), an area id (TV).
    recipient_id       text        NOT NULL,
    -- Whose inbox an in-app message lands in: the resident id, or the
    -- helper's person id; empty for group chats and displays.
    person_id          text        NOT NULL DEFAULT '',
    -- Grid worker alerts: the resident to phone; empty otherwise.
    about_id           text        NOT NULL DEFAULT '',
    micro_grid_id      uuid,
    channel            smallint    NOT NULL,
    language           text        NOT NULL DEFAULT 'zh',
    -- Alerts carry their own text; others use the notification's.
    title              text,
    body               text,
    status             smallint    NOT NULL DEFAULT 1,
    failure_reason     text        NOT NULL DEFAULT '',
    attempts           integer     NOT NULL DEFAULT 0,
    -- A retrying delivery waits until then (backoff, or the Retry-After asked).
    next_attempt_time  timestamptz,
    sent_time          timestamptz,
    read_time          timestamptz,
    update_time        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (notification_id, purpose, recipient_kind, recipient_id, channel, about_id),
    UNIQUE (notification_id, seq)
);

CREATE INDEX deliveries_pending ON deliveries (notification_id, purpose, seq)
    WHERE status IN (1, 6);
CREATE INDEX deliveries_inbox ON deliveries (person_id, sent_time DESC, id)
    WHERE channel = 1 AND sent_time IS NOT NULL;
CREATE INDEX deliveries_recipient ON deliveries (notification_id, recipient_id);

-- What the outbox provider "sent": one row per delivery at most.
CREATE TABLE outbox_messages (
    id               uuid        PRIMARY KEY,
    delivery_id      uuid        NOT NULL UNIQUE REFERENCES deliveries (id),
    notification_id  uuid        NOT NULL,
    channel          smallint    NOT NULL,
    address          text        NOT NULL,
    title            text        NOT NULL,
    body             text        NOT NULL,
    create_time      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_by_notification ON outbox_messages (notification_id, create_time, id);
CREATE INDEX outbox_by_time ON outbox_messages (create_time, id);
