-- PostgreSQL only: work that becomes queued (a create, a batch's commit, a requeue, an expired
-- lease) notifies 'leeway_queued' with its model, at commit, so dispatchers in every process
-- wake at once instead of at their next poll (PostgresStore.listen). Once per statement and model.
CREATE FUNCTION jobs_queued_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('leeway_queued', q.model)
    FROM (SELECT DISTINCT model FROM new_rows WHERE status = 'queued') q;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_inserted_notify AFTER INSERT ON jobs
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_queued_notify();
CREATE TRIGGER jobs_updated_notify AFTER UPDATE ON jobs
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_queued_notify();
