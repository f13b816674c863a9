-- The good-deed points ledger, double-entry. Every posting is an append-only
-- pair of entries summing to zero; accounts.balance is the running sum of an
-- account's entries, kept on the row so that a spend can check and lock it.
-- kind: 1 city (issuing), 2 resident, 3 merchant, 4 holds (AccountKind).
CREATE TABLE accounts (
    id           uuid        PRIMARY KEY,
    kind         smallint    NOT NULL CHECK (kind BETWEEN 1 AND 4),
    owner_id     uuid,
    balance      bigint      NOT NULL DEFAULT 0,
    -- Points ever earned, for the leaderboard.
    earned       bigint      NOT NULL DEFAULT 0 CHECK (earned >= 0),
    create_time  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_owner UNIQUE NULLS NOT DISTINCT (kind, owner_id),
    CONSTRAINT accounts_owner_needed CHECK ((kind IN (1, 4)) = (owner_id IS NULL)),
    -- Only the city issues points, so only its balance goes below zero.
    CONSTRAINT accounts_balance_not_negative CHECK (kind = 1 OR balance >= 0)
);

INSERT INTO accounts (id, kind) VALUES
    ('00000000-0000-0000-0000-000000000001', 1),
    ('00000000-0000-0000-0000-000000000004', 4);

-- kind: 1 earn, 2 spend, 3 hold, 4 commit, 5 release (PostingKind).
CREATE TABLE postings (
    id           uuid        PRIMARY KEY,
    kind         smallint    NOT NULL CHECK (kind BETWEEN 1 AND 5),
    -- caller, method and request_id (or a fresh id when the caller sent
    -- none): the same request never posts twice, whatever the path.
    request_key  text        NOT NULL UNIQUE,
    activity     smallint,
    hold_id      uuid,
    create_time  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE entries (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    posting_id     uuid        NOT NULL REFERENCES postings (id),
    account_id     uuid        NOT NULL REFERENCES accounts (id),
    points         bigint      NOT NULL CHECK (points <> 0),
    balance_after  bigint      NOT NULL,
    create_time    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX entries_statement ON entries (account_id, id DESC);
CREATE INDEX entries_posting ON entries (posting_id);

CREATE FUNCTION ledger_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the points ledger is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'check_violation';
END $$;

CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();

-- Checked at commit, when both entries of a posting are in.
CREATE FUNCTION posting_sums_to_zero() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) <> 2 OR sum(points) <> 0 FROM entries
        WHERE posting_id = NEW.posting_id) THEN
        RAISE EXCEPTION 'posting % is not two entries summing to zero', NEW.posting_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION posting_sums_to_zero();

-- kind of state: 1 pending, 2 committed, 3 released (HoldState).
CREATE TABLE holds (
    id                uuid        PRIMARY KEY,
    resident_account  uuid        NOT NULL REFERENCES accounts (id),
    merchant_account  uuid        NOT NULL REFERENCES accounts (id),
    points            bigint      NOT NULL CHECK (points > 0),
    state             smallint    NOT NULL DEFAULT 1 CHECK (state BETWEEN 1 AND 3),
    create_time       timestamptz NOT NULL DEFAULT now(),
    update_time       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX holds_resident ON holds (resident_account);

-- How many points each activity earns (Activity in the proto); operators
-- change them with SetEarningRule.
CREATE TABLE earning_rules (
    activity     smallint    PRIMARY KEY CHECK (activity BETWEEN 1 AND 6),
    points       bigint      NOT NULL CHECK (points >= 0),
    update_time  timestamptz NOT NULL DEFAULT now()
);

-- volunteer patrol, anti-fraud talk, confirmed tip-off, errand helped,
-- care visit, epidemic duty.
INSERT INTO earning_rules (activity, points) VALUES
    (1, 20), (2, 30), (3, 50), (4, 20), (5, 20), (6, 30);
