-- Three-affairs disclosures. Revisions are append-only: a correction adds a
-- revision and never rewrites or deletes one (triggers refuse it).
CREATE TABLE disclosures (
    id            uuid        PRIMARY KEY,
    village_id    uuid        NOT NULL,
    publisher_id  text        NOT NULL,
    revision      integer     NOT NULL DEFAULT 1,
    category      smallint    NOT NULL,
    publish_time  timestamptz NOT NULL DEFAULT now(),
    update_time   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX disclosures_village ON disclosures (village_id, publish_time DESC, id);

CREATE TABLE disclosure_revisions (
    disclosure_id  uuid        NOT NULL REFERENCES disclosures (id),
    revision       integer     NOT NULL,
    category       smallint    NOT NULL,
    title          text        NOT NULL,
    body           text        NOT NULL,
    attachments    jsonb       NOT NULL DEFAULT '[]',
    period         text        NOT NULL,
    editor_id      text        NOT NULL,
    reason         text        NOT NULL DEFAULT '',
    create_time    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (disclosure_id, revision)
);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'disclosure revisions are append-only'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'append_only';
END $$;

CREATE TRIGGER disclosure_revisions_append_only
    BEFORE UPDATE OR DELETE ON disclosure_revisions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER disclosures_no_delete
    BEFORE DELETE ON disclosures
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
