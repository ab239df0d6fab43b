-- Batches: a batch's items are ordinary jobs carrying its id, their custom_id and their place in it.
-- Items are inserted as 'staged' (invisible to every other query) in chunks while the body is read,
-- then made 'queued' in one transaction with the batch row: a batch is stored whole or not at all.
ALTER TABLE jobs ADD COLUMN batch_id TEXT;
ALTER TABLE jobs ADD COLUMN custom_id TEXT;
ALTER TABLE jobs ADD COLUMN batch_index INTEGER;
CREATE UNIQUE INDEX jobs_batch_items ON jobs (batch_id, batch_index) WHERE batch_id IS NOT NULL;
CREATE UNIQUE INDEX jobs_batch_custom_ids ON jobs (batch_id, custom_id) WHERE batch_id IS NOT NULL;

CREATE TABLE batches (
    id                TEXT PRIMARY KEY,
    tenant            TEXT NOT NULL,
    shape             TEXT NOT NULL,       -- 'reference' (requests inline) or 'openai' (input file)
    endpoint          TEXT NOT NULL,
    label             TEXT,
    completion_window TEXT NOT NULL,       -- as the client named it
    metadata          TEXT NOT NULL,       -- JSON object
    input_file_id     TEXT,
    created_at        DOUBLE PRECISION NOT NULL,
    committed         INTEGER NOT NULL DEFAULT 0,  -- 0 while its items are being staged
    total             INTEGER NOT NULL DEFAULT 0,
    -- items per state, kept by the trigger below (so counting a 100,000-item batch reads one row)
    n_queued          INTEGER NOT NULL DEFAULT 0,
    n_running         INTEGER NOT NULL DEFAULT 0,
    n_completed       INTEGER NOT NULL DEFAULT 0,
    n_incomplete      INTEGER NOT NULL DEFAULT 0,
    n_failed          INTEGER NOT NULL DEFAULT 0,
    n_cancelled       INTEGER NOT NULL DEFAULT 0,
    cancelled_at      DOUBLE PRECISION,    -- when a cancel was asked for
    finished_at       DOUBLE PRECISION,    -- when its last item reached a final state
    finalized_at      DOUBLE PRECISION,    -- when its output files were written (openai shape)
    output_file_id    TEXT,
    error_file_id     TEXT
);
CREATE INDEX batches_by_tenant ON batches (tenant, created_at, id) WHERE committed = 1;
CREATE INDEX batches_to_finalize ON batches (finished_at) WHERE finalized_at IS NULL;

-- The counters follow every move of a committed item. Once per statement, not per row: a claim of
-- many items of one batch updates its row once, and batches are updated in id order, so two
-- statements moving items of the same batches never wait on each other in a cycle.
CREATE FUNCTION batch_items_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE batches b SET
        n_queued     = n_queued     + m.queued,
        n_running    = n_running    + m.running,
        n_completed  = n_completed  + m.completed,
        n_incomplete = n_incomplete + m.incomplete,
        n_failed     = n_failed     + m.failed,
        n_cancelled  = n_cancelled  + m.cancelled,
        finished_at  = CASE
            WHEN b.finished_at IS NULL AND n_queued + m.queued = 0 AND n_running + m.running = 0
            THEN m.at ELSE b.finished_at END
    FROM (
        SELECT n.batch_id,
               sum((n.status = 'queued')::int      - (o.status = 'queued')::int)      AS queued,
               sum((n.status = 'in_progress')::int - (o.status = 'in_progress')::int) AS running,
               sum((n.status = 'completed')::int   - (o.status = 'completed')::int)   AS completed,
               sum((n.status = 'incomplete')::int  - (o.status = 'incomplete')::int)  AS incomplete,
               sum((n.status = 'failed')::int      - (o.status = 'failed')::int)      AS failed,
               sum((n.status = 'cancelled')::int   - (o.status = 'cancelled')::int)   AS cancelled,
               coalesce(max(n.completed_at), max(o.created_at)) AS at
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.batch_id IS NOT NULL AND n.status <> o.status AND o.status <> 'staged'
        GROUP BY n.batch_id
        ORDER BY n.batch_id
    ) m
    WHERE b.id = m.batch_id;
    RETURN NULL;
END $$;
CREATE TRIGGER batch_items_moved AFTER UPDATE ON jobs
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION batch_items_moved();

-- Files: uploads (purpose 'batch') and the output and error files of finished batches; their
-- bytes live under <data_dir>/files/<id>.jsonl.
CREATE TABLE files (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    purpose    TEXT NOT NULL,              -- 'batch', 'batch_output'
    filename   TEXT NOT NULL,
    bytes      BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX files_by_tenant ON files (tenant, created_at, id);

-- An idempotency key now holds whatever its request made: a job, a batch or a file (its id).
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_job_id_fkey;
ALTER TABLE idempotency_keys RENAME COLUMN job_id TO subject;
DROP INDEX idempotency_keys_job;
CREATE INDEX idempotency_keys_subject ON idempotency_keys (subject);
-- Deleting what a key made frees the key.
CREATE FUNCTION subject_deleted_frees_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM idempotency_keys WHERE subject = OLD.id;
    RETURN NULL;
END $$;
CREATE TRIGGER job_deleted_frees_key AFTER DELETE ON jobs
FOR EACH ROW EXECUTE FUNCTION subject_deleted_frees_key();
CREATE TRIGGER file_deleted_frees_key AFTER DELETE ON files
FOR EACH ROW EXECUTE FUNCTION subject_deleted_frees_key();
