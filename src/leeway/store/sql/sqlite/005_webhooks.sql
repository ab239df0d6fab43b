-- Completion webhooks: an outbox of deliveries, each attempt, and the tenants' signing secrets.
--
-- A delivery is written by a trigger in the same transaction that moves a job to a final state, for
-- every path that does (finish, cancel, a lease that ran out of attempts, …), so a crash between the
-- final state and the POST loses nothing. Deliveries are not removed with their job: they are the
-- tenant's record of what was sent where (pruned by age); one still pending when its job is deleted
-- fails ("deleted before it could be delivered") instead of sending a deleted response.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,   -- the webhook-id header, the same on every attempt
    tenant           TEXT NOT NULL,
    subject_kind     TEXT NOT NULL,      -- 'job' (a completion webhook); later e.g. 'batch'
    subject_id       TEXT NOT NULL,
    url              TEXT NOT NULL,
    token            TEXT,               -- sent as Authorization: Bearer
    body             BLOB,               -- pre-rendered; NULL: rendered from the subject when sent
    status           TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,      -- also the lease: an attempt pushes it past its timeout
    created_at       REAL NOT NULL,
    finished_at      REAL,
    last_status_code INTEGER,
    last_error       TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant, created_at);
CREATE INDEX webhook_deliveries_subject ON webhook_deliveries (tenant, subject_id);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE status != 'pending';

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,        -- 1, 2, …
    at          REAL NOT NULL,
    duration    REAL NOT NULL,           -- seconds
    status_code INTEGER,                 -- NULL: no answer (network error, timeout, refused)
    error       TEXT,
    PRIMARY KEY (delivery_id, number)
);

-- Signing secrets (whsec_…), stored as they are: an HMAC needs the secret itself. The current one
-- has no retires_at; a rotated-out one signs too until its retires_at.
CREATE TABLE webhook_secrets (
    tenant     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at REAL NOT NULL,
    retires_at REAL,
    PRIMARY KEY (tenant, secret)
);

CREATE TRIGGER jobs_completion_webhook AFTER UPDATE OF status ON jobs
WHEN old.status IN ('queued', 'in_progress')
 AND new.status IN ('completed', 'failed', 'incomplete', 'cancelled')
 AND json_extract(new.metadata, '$.completion_webhook') IS NOT NULL
BEGIN
    INSERT INTO webhook_deliveries (id, tenant, subject_kind, subject_id, url, token,
                                    next_attempt_at, created_at)
    VALUES ('whmsg_' || lower(hex(randomblob(24))), new.tenant, 'job', new.id,
            json_extract(new.metadata, '$.completion_webhook'),
            json_extract(new.metadata, '$.webhook_token'),
            coalesce(new.completed_at, (julianday('now') - 2440587.5) * 86400.0),
            coalesce(new.completed_at, (julianday('now') - 2440587.5) * 86400.0));
END;
