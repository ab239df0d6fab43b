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
    created_at        REAL NOT NULL,
    committed         INTEGER NOT NULL DEFAULT 0,  -- 0 while its items are being staged
    total             INTEGER NOT NULL DEFAULT 0,
    -- items per state, kept by the trigger below (so counting a 100,000-item batch reads one row)
    n_queued          INTEGER NOT NULL DEFAULT 0,
    n_running         INTEGER NOT NULL DEFAULT 0,
    n_completed       INTEGER NOT NULL DEFAULT 0,
    n_incomplete      INTEGER NOT NULL DEFAULT 0,
    n_failed          INTEGER NOT NULL DEFAULT 0,
    n_cancelled       INTEGER NOT NULL DEFAULT 0,
    cancelled_at      REAL,                -- when a cancel was asked for
    finished_at       REAL,                -- when its last item reached a final state
    finalized_at      REAL,                -- when its output files were written (openai shape)
    output_file_id    TEXT,
    error_file_id     TEXT
);
CREATE INDEX batches_by_tenant ON batches (tenant, created_at, id) WHERE committed = 1;
CREATE INDEX batches_to_finalize ON batches (finished_at) WHERE finalized_at IS NULL;

CREATE TRIGGER batch_item_moved AFTER UPDATE OF status ON jobs
WHEN NEW.batch_id IS NOT NULL AND NEW.status <> OLD.status AND OLD.status <> 'staged'
BEGIN
    UPDATE batches SET
        n_queued     = n_queued     + (NEW.status = 'queued')      - (OLD.status = 'queued'),
        n_running    = n_running    + (NEW.status = 'in_progress') - (OLD.status = 'in_progress'),
        n_completed  = n_completed  + (NEW.status = 'completed')   - (OLD.status = 'completed'),
        n_incomplete = n_incomplete + (NEW.status = 'incomplete')  - (OLD.status = 'incomplete'),
        n_failed     = n_failed     + (NEW.status = 'failed')      - (OLD.status = 'failed'),
        n_cancelled  = n_cancelled  + (NEW.status = 'cancelled')   - (OLD.status = 'cancelled')
    WHERE id = NEW.batch_id;
    UPDATE batches SET finished_at = coalesce(NEW.completed_at, OLD.created_at)
    WHERE id = NEW.batch_id AND n_queued = 0 AND n_running = 0 AND finished_at IS NULL;
END;

-- Files: uploads (purpose 'batch') and the output and error files of finished batches; their
-- bytes live under <data_dir>/files/<id>.jsonl.
CREATE TABLE files (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    purpose    TEXT NOT NULL,              -- 'batch', 'batch_output'
    filename   TEXT NOT NULL,
    bytes      INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX files_by_tenant ON files (tenant, created_at, id);

-- An idempotency key now holds whatever its request made: a job, a batch or a file (its id).
CREATE TABLE idempotency_keys_new (
    tenant      TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    subject     TEXT NOT NULL,              -- the id of the job, batch or file it made
    created_at  REAL NOT NULL,
    PRIMARY KEY (tenant, key)
);
INSERT INTO idempotency_keys_new SELECT tenant, key, fingerprint, job_id, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_new RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX idempotency_keys_subject ON idempotency_keys (subject);
-- Deleting what a key made frees the key.
CREATE TRIGGER job_deleted_frees_key AFTER DELETE ON jobs
BEGIN DELETE FROM idempotency_keys WHERE subject = OLD.id; END;
CREATE TRIGGER file_deleted_frees_key AFTER DELETE ON files
BEGIN DELETE FROM idempotency_keys WHERE subject = OLD.id; END;
