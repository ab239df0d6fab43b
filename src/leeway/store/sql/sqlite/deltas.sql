-- Text pieces of running jobs (leeway.store.sqlite: append_deltas, deltas).

-- name: delta_fence
-- Only the run holding the job's lease stores its pieces.
SELECT 1 FROM jobs WHERE id = :id AND lease_token = :token AND status = 'in_progress';

-- name: insert_delta
INSERT OR IGNORE INTO job_deltas (job_id, seq, text) VALUES (:job_id, :seq, :text);

-- name: deltas
-- Each watched job's status and its pieces from seq :after on (``{job id: after}``, JSON).
SELECT j.id, j.status, d.seq, d.text
FROM json_each(:after) w JOIN jobs j ON j.id = w.key
LEFT JOIN job_deltas d ON d.job_id = j.id AND d.seq >= w.value
ORDER BY j.id, d.seq;
