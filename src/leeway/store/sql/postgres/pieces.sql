-- The text pieces of running jobs (leeway.store.jobs: append_pieces, pieces; the table: 011, 012).

-- name: held_leases
-- Of these claims, those still holding their job's lease: only they store pieces. A job row being
-- changed right now (a finish, a renew) is skipped, not waited for: its pieces go in the next write.
SELECT j.id FROM jobs j
JOIN unnest(:ids::text[], :tokens::text[]) AS h (id, token)
  ON j.id = h.id AND j.lease_token = h.token
WHERE j.status = 'in_progress'
FOR SHARE OF j SKIP LOCKED;

-- name: insert_pieces
-- A piece stored already is left as it is.
INSERT INTO job_pieces (job_id, seq, text)
SELECT * FROM unnest(:job_ids::text[], :seqs::int[], :texts::text[])
ON CONFLICT (job_id, seq) DO NOTHING;

-- name: pieces
-- Each followed job's status and its pieces from seq :after on, in one read.
SELECT j.id, j.status, p.seq, p.text
FROM unnest(:ids::text[], :after::int[]) AS w (id, after) JOIN jobs j ON j.id = w.id
LEFT JOIN job_pieces p ON p.job_id = w.id AND p.seq >= w.after
ORDER BY j.id, p.seq;
