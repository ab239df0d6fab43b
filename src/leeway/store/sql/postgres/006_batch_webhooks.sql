-- A batch-level webhook: when a batch whose metadata names a completion_webhook reaches its final
-- state (every item final and, for OpenAI's shape, its output files written), a delivery is written
-- in the same transaction. Its body is the batch as GET /v1/batches/{id} shows it.
CREATE FUNCTION batches_completion_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (id, tenant, subject_kind, subject_id, url, token,
                                    next_attempt_at, created_at)
    VALUES (webhook_id(), NEW.tenant, 'batch', NEW.id,
            NEW.metadata::jsonb ->> 'completion_webhook', NEW.metadata::jsonb ->> 'webhook_token',
            NEW.finalized_at, NEW.finalized_at);
    RETURN NULL;
END $$;
CREATE TRIGGER batches_completion_webhook AFTER UPDATE OF finalized_at ON batches FOR EACH ROW
WHEN (OLD.finalized_at IS NULL AND NEW.finalized_at IS NOT NULL
      AND NEW.metadata::jsonb ->> 'completion_webhook' IS NOT NULL)
EXECUTE FUNCTION batches_completion_webhook();
