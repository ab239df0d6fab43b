-- A batch's items are inserted 'queued' while the batch is uncommitted (committed = 0) and every
-- query that reads the queue skips them: making a batch visible is then one write to its row, not a
-- rewrite of its (up to 100,000) items. Status 'staged' is no longer written.
-- The queue's indexes carry batch_id, so passing over an uncommitted batch's items reads no table
-- rows; counts subtract those items (found by jobs_batch_items) instead of filtering every row.
CREATE INDEX batches_uncommitted ON batches (id) WHERE committed = 0;
DROP INDEX jobs_queued;
CREATE INDEX jobs_queued ON jobs (model, window_rank, deadline, batch_id) WHERE status = 'queued';
DROP INDEX jobs_queued_by_deadline;
CREATE INDEX jobs_queued_by_deadline ON jobs (model, deadline, batch_id) WHERE status = 'queued';
