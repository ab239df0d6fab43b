-- A batch-level webhook: when a batch whose metadata names a completion_webhook reaches its final
-- state (every item final and, for OpenAI's shape, its output files written), a delivery is written
-- in the same transaction. Its body is the batch as GET /v1/batches/{id} shows it.
CREATE TRIGGER batches_completion_webhook AFTER UPDATE OF finalized_at ON batches
WHEN old.finalized_at IS NULL AND new.finalized_at IS NOT NULL
 AND json_extract(new.metadata, '$.completion_webhook') IS NOT NULL
BEGIN
    INSERT INTO webhook_deliveries (id, tenant, subject_kind, subject_id, url, token,
                                    next_attempt_at, created_at)
    VALUES ('whmsg_' || lower(hex(randomblob(24))), new.tenant, 'batch', new.id,
            json_extract(new.metadata, '$.completion_webhook'),
            json_extract(new.metadata, '$.webhook_token'),
            new.finalized_at, new.finalized_at);
END;
