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
    body             BYTEA,              -- pre-rendered; NULL: rendered from the subject when sent
    status           TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  DOUBLE PRECISION NOT NULL,  -- also the lease: an attempt pushes it past its timeout
    created_at       DOUBLE PRECISION NOT NULL,
    finished_at      DOUBLE PRECISION,
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
    at          DOUBLE PRECISION NOT NULL,
    duration    DOUBLE PRECISION NOT NULL,  -- seconds
    status_code INTEGER,                 -- NULL: no answer (network error, timeout, refused)
    error       TEXT,
    PRIMARY KEY (delivery_id, number)
);

-- Signing secrets (whsec_…), stored as they are: an HMAC needs the secret itself. The current one
-- has no retires_at; a rotated-out one signs too until its retires_at. ``seq`` orders secrets made
-- in the same second (SQLite's rowid).
CREATE TABLE webhook_secrets (
    tenant     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    retires_at DOUBLE PRECISION,
    seq        BIGSERIAL,
    PRIMARY KEY (tenant, secret)
);

-- 48 random hex digits, as SQLite's lower(hex(randomblob(24))).
CREATE FUNCTION webhook_id() RETURNS TEXT LANGUAGE sql VOLATILE AS $$
    SELECT 'whmsg_' || substr(encode(sha256(
        (gen_random_uuid()::text || gen_random_uuid()::text)::bytea), 'hex'), 1, 48)
$$;

CREATE FUNCTION jobs_completion_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at DOUBLE PRECISION := coalesce(NEW.completed_at, extract(epoch FROM clock_timestamp()));
BEGIN
    INSERT INTO webhook_deliveries (id, tenant, subject_kind, subject_id, url, token,
                                    next_attempt_at, created_at)
    VALUES (webhook_id(), NEW.tenant, 'job', NEW.id,
            NEW.metadata::jsonb ->> 'completion_webhook', NEW.metadata::jsonb ->> 'webhook_token',
            at, at);
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_completion_webhook AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN (OLD.status IN ('queued', 'in_progress')
      AND NEW.status IN ('completed', 'failed', 'incomplete', 'cancelled')
      AND NEW.metadata::jsonb ->> 'completion_webhook' IS NOT NULL)
EXECUTE FUNCTION jobs_completion_webhook();
