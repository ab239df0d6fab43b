-- Jobs: one row per request, every transition a write. Api keys: stored as SHA-256 hashes.
-- The same tables and columns as sql/sqlite/001_init.sql; times are seconds since the epoch.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    tenant           TEXT NOT NULL,
    surface          TEXT NOT NULL,
    model            TEXT NOT NULL,
    status           TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    requested_window TEXT,
    window_rank      INTEGER NOT NULL,
    created_at       DOUBLE PRECISION NOT NULL,
    deadline         DOUBLE PRECISION NOT NULL,
    prompt_tokens    INTEGER NOT NULL,
    request          TEXT NOT NULL,      -- JSON: messages and sampling, what the engine runs
    metadata         TEXT NOT NULL,      -- JSON object of strings
    echo             TEXT NOT NULL,      -- JSON: wire fields only the surface reads back
    attempts         INTEGER NOT NULL DEFAULT 0,
    partial_text     TEXT NOT NULL DEFAULT '',  -- generated before the job last yielded its engine
    partial_tokens   INTEGER NOT NULL DEFAULT 0,
    partial_deltas   TEXT NOT NULL DEFAULT '[]', -- JSON: sizes of the pieces it was streamed in
    lease_token      TEXT,
    lease_expires    DOUBLE PRECISION,
    started_at       DOUBLE PRECISION,
    completed_at     DOUBLE PRECISION,
    output_text      TEXT,
    finish           TEXT,
    stop_sequence    TEXT,
    deltas           TEXT,               -- JSON: sizes of the pieces the output was streamed in
    input_tokens     INTEGER,
    output_tokens    INTEGER,
    error            TEXT                -- JSON: {"code", "message"}
);
CREATE INDEX jobs_queued ON jobs (model, window_rank, deadline) WHERE status = 'queued';
CREATE INDEX jobs_queued_by_deadline ON jobs (model, deadline) WHERE status = 'queued';
CREATE INDEX jobs_leased ON jobs (lease_expires) WHERE status = 'in_progress';

CREATE TABLE api_keys (
    key_hash   TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
