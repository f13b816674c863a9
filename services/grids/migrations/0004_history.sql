-- History imports: each batch of a file commits alone, with its row here, so
-- an interrupted import resumes after its last committed batch and a re-run
-- of a finished one changes nothing.
CREATE TABLE history_imports (
    id           text        PRIMARY KEY,
    -- 'cases' or 'patrols'.
    record_kind  text        NOT NULL CHECK (record_kind IN ('cases', 'patrols')),
    create_time  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE history_import_batches (
    import_id    text        NOT NULL REFERENCES history_imports (id),
    batch        integer     NOT NULL,
    first_row    integer     NOT NULL,
    rows         integer     NOT NULL,
    -- Rows written; 0 when the batch was refused for its bad rows.
    imported     integer     NOT NULL,
    -- [{"row": n, "reason": "..."}] for a refused batch.
    bad_rows     jsonb       NOT NULL DEFAULT '[]',
    finish_time  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (import_id, batch)
);
