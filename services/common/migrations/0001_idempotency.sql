-- Answers to mutating RPCs that carried a request_id, so a retry returns the
-- first answer instead of acting twice. Every service schema has one.
CREATE TABLE idempotency_keys (
    caller        text        NOT NULL,
    method        text        NOT NULL,
    request_id    text        NOT NULL,
    request_hash  bytea       NOT NULL,
    response      bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, method, request_id)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
