-- The fcfs policy picks queued jobs in arrival order (queued_by_arrival): an index range, not a
-- sort of the whole queue.
CREATE INDEX jobs_queued_by_arrival ON jobs (model, created_at, batch_id) WHERE status = 'queued';
