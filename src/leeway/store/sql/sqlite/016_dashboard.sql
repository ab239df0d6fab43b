-- The web dashboard (issue 17): its sign-in sessions, shared by every process on the store (the
-- cookie holds a random token; only its SHA-256 is stored), and the indexes its pages read by.
CREATE TABLE dashboard_sessions (
    token_hash TEXT PRIMARY KEY,       -- SHA-256 of the cookie's token
    key_id     TEXT NOT NULL,          -- the API key signed in with (rechecked on every request)
    csrf       TEXT NOT NULL,          -- the token every form of this session posts back
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

-- Every tenant's batches, newest first (an admin's list).
CREATE INDEX batches_by_creation ON batches (created_at, id) WHERE committed = 1;
-- Jobs that became final lately (turn times and attainment over the last hour).
CREATE INDEX jobs_completed ON jobs (completed_at) WHERE completed_at IS NOT NULL;
