-- Typed columns for what code branches on, so no SQL parses client metadata; one word for streamed
-- text (a piece) and its lengths (piece sizes); a job's crashes counted apart from its attempts.
ALTER TABLE jobs ADD COLUMN webhook_url TEXT;        -- metadata.completion_webhook, set at intake
ALTER TABLE jobs ADD COLUMN webhook_token TEXT;      -- metadata.webhook_token
ALTER TABLE jobs ADD COLUMN output_calls TEXT;       -- JSON [[id, name, arguments, kind], …]
ALTER TABLE jobs ADD COLUMN lease_holder TEXT;       -- the dispatcher holding the lease
ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;  -- runs lost to a dead holder
ALTER TABLE jobs RENAME COLUMN deltas TO piece_sizes;
ALTER TABLE jobs RENAME COLUMN partial_deltas TO partial_piece_sizes;
UPDATE jobs SET webhook_url = json_extract(metadata, '$.completion_webhook'),
                webhook_token = json_extract(metadata, '$.webhook_token')
WHERE json_extract(metadata, '$.completion_webhook') IS NOT NULL;

ALTER TABLE batches ADD COLUMN webhook_url TEXT;
ALTER TABLE batches ADD COLUMN webhook_token TEXT;
UPDATE batches SET webhook_url = json_extract(metadata, '$.completion_webhook'),
                   webhook_token = json_extract(metadata, '$.webhook_token')
WHERE json_extract(metadata, '$.completion_webhook') IS NOT NULL;

DROP TRIGGER jobs_completion_webhook;
CREATE TRIGGER jobs_completion_webhook AFTER UPDATE OF status ON jobs
WHEN old.status IN ('queued', 'in_progress')
 AND new.status IN ('completed', 'failed', 'incomplete', 'cancelled')
 AND new.webhook_url IS NOT NULL
BEGIN
    INSERT INTO webhook_deliveries (id, tenant, subject_kind, subject_id, url, token,
                                    next_attempt_at, created_at)
    VALUES ('whmsg_' || lower(hex(randomblob(24))), new.tenant, 'job', new.id,
            new.webhook_url, new.webhook_token,
            coalesce(new.completed_at, (julianday('now') - 2440587.5) * 86400.0),
            coalesce(new.completed_at, (julianday('now') - 2440587.5) * 86400.0));
END;

DROP TRIGGER batches_completion_webhook;
CREATE TRIGGER batches_completion_webhook AFTER UPDATE OF finalized_at ON batches
WHEN old.finalized_at IS NULL AND new.finalized_at IS NOT NULL AND new.webhook_url IS NOT NULL
BEGIN
    INSERT INTO webhook_deliveries (id, tenant, subject_kind, subject_id, url, token,
                                    next_attempt_at, created_at)
    VALUES ('whmsg_' || lower(hex(randomblob(24))), new.tenant, 'batch', new.id,
            new.webhook_url, new.webhook_token, new.finalized_at, new.finalized_at);
END;

DROP TRIGGER job_deltas_done;
ALTER TABLE job_deltas RENAME TO job_pieces;
CREATE TRIGGER job_pieces_done AFTER UPDATE OF status ON jobs
WHEN OLD.status = 'in_progress' AND NEW.status <> 'in_progress'
BEGIN
    DELETE FROM job_pieces WHERE job_id = NEW.id;
END;
