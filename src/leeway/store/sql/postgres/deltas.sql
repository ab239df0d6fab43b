-- Text pieces of running jobs (leeway.store.postgres: append_deltas, deltas).

-- name: append_deltas
-- Only the runs holding their job's lease store pieces; a job row being changed right now (a
-- finish, a renew) is skipped, not waited for: its pieces go in the next write. Returns the jobs
-- whose pieces were stored.
WITH held AS (
    SELECT j.id FROM jobs j
    JOIN unnest(:held_ids::text[], :held_tokens::text[]) AS h (id, token)
      ON j.id = h.id AND j.lease_token = h.token
    WHERE j.status = 'in_progress'
    FOR SHARE OF j SKIP LOCKED
), added AS (
    INSERT INTO job_deltas (job_id, seq, text)
    SELECT d.job_id, d.seq, d.text
    FROM unnest(:job_ids::text[], :seqs::int[], :texts::text[]) AS d (job_id, seq, text)
    WHERE d.job_id IN (SELECT id FROM held)
    ON CONFLICT (job_id, seq) DO NOTHING
)
SELECT id FROM held;

-- name: deltas
-- Each watched job's status and its pieces from seq ``after`` on.
SELECT j.id, j.status, d.seq, d.text
FROM unnest(:ids::text[], :after::int[]) AS w (id, after) JOIN jobs j ON j.id = w.id
LEFT JOIN job_deltas d ON d.job_id = w.id AND d.seq >= w.after
ORDER BY j.id, d.seq;
