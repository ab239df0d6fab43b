-- The text pieces of running jobs, for API processes that stream a job another process runs
-- (leeway.api.relay): seq numbers a job's pieces from its first, earlier runs' included. A job's
-- pieces are dropped once it leaves in_progress (final: its text is in the row; requeued: in
-- partial_text, and its next run stores them again).
CREATE TABLE job_deltas (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    text   TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER job_deltas_done AFTER UPDATE OF status ON jobs
WHEN OLD.status = 'in_progress' AND NEW.status <> 'in_progress'
BEGIN
    DELETE FROM job_deltas WHERE job_id = NEW.id;
END;
