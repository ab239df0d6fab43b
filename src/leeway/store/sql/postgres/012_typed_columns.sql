-- Typed columns for what code branches on, so no SQL parses client metadata; one word for streamed
-- text (a piece) and its lengths (piece sizes); a job's crashes counted apart from its attempts.
ALTER TABLE jobs ADD COLUMN webhook_url TEXT;        -- metadata.completion_webhook, set at intake
ALTER TABLE jobs ADD COLUMN webhook_token TEXT;      -- metadata.webhook_token
ALTER TABLE jobs ADD COLUMN output_calls TEXT;       -- JSON [[id, name, arguments, kind], …]
ALTER TABLE jobs ADD COLUMN lease_holder TEXT;       -- the dispatcher holding the lease
ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;  -- runs lost to a dead holder
ALTER TABLE jobs RENAME COLUMN deltas TO piece_sizes;
ALTER TABLE jobs RENAME COLUMN partial_deltas TO partial_piece_sizes;
UPDATE jobs SET webhook_url = metadata::jsonb ->> 'completion_webhook',
                webhook_token = metadata::jsonb ->> 'webhook_token'
WHERE metadata::jsonb ->> 'completion_webhook' IS NOT NULL;

ALTER TABLE batches ADD COLUMN webhook_url TEXT;
ALTER TABLE batches ADD COLUMN webhook_token TEXT;
UPDATE batches SET webhook_url = metadata::jsonb ->> 'completion_webhook',
                   webhook_token = metadata::jsonb ->> 'webhook_token'
WHERE metadata::jsonb ->> 'completion_webhook' IS NOT NULL;

DROP TRIGGER jobs_completion_webhook ON jobs;
CREATE OR REPLACE FUNCTION jobs_completion_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at DOUBLE PRECISION := coalesce(NEW.completed_at, extract(epoch FROM clock_timestamp()));
BEGIN
    INSERT INTO webhook_deliveries (id, tenant, subject_kind, subject_id, url, token,
                                    next_attempt_at, created_at)
    VALUES (webhook_id(), NEW.tenant, 'job', NEW.id, NEW.webhook_url, NEW.webhook_token, at, at);
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_completion_webhook AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN (OLD.status IN ('queued', 'in_progress')
      AND NEW.status IN ('completed', 'failed', 'incomplete', 'cancelled')
      AND NEW.webhook_url IS NOT NULL)
EXECUTE FUNCTION jobs_completion_webhook();

DROP TRIGGER batches_completion_webhook ON batches;
CREATE OR REPLACE FUNCTION batches_completion_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (id, tenant, subject_kind, subject_id, url, token,
                                    next_attempt_at, created_at)
    VALUES (webhook_id(), NEW.tenant, 'batch', NEW.id, NEW.webhook_url, NEW.webhook_token,
            NEW.finalized_at, NEW.finalized_at);
    RETURN NULL;
END $$;
CREATE TRIGGER batches_completion_webhook AFTER UPDATE OF finalized_at ON batches FOR EACH ROW
WHEN (OLD.finalized_at IS NULL AND NEW.finalized_at IS NOT NULL AND NEW.webhook_url IS NOT NULL)
EXECUTE FUNCTION batches_completion_webhook();

DROP TRIGGER job_deltas_done ON jobs;
DROP FUNCTION job_deltas_done();
ALTER TABLE job_deltas RENAME TO job_pieces;
ALTER TABLE job_pieces RENAME CONSTRAINT job_deltas_pkey TO job_pieces_pkey;
ALTER TABLE job_pieces RENAME CONSTRAINT job_deltas_job_id_fkey TO job_pieces_job_id_fkey;
CREATE FUNCTION job_pieces_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_pieces WHERE job_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER job_pieces_done AFTER UPDATE OF status ON jobs FOR EACH ROW
WHEN (OLD.status = 'in_progress' AND NEW.status <> 'in_progress')
EXECUTE FUNCTION job_pieces_done();
