-- The text pieces of running jobs (leeway.store.jobs: append_pieces, pieces; the table: 011, 012).

-- name: held_leases
-- Of these claims, those still holding their job's lease: only they store pieces.
SELECT jobs.id FROM jobs
JOIN (SELECT i.value AS id, t.value AS token
      FROM json_each(:ids) AS i JOIN json_each(:tokens) AS t ON t.key = i.key) AS held
  ON jobs.id = held.id AND jobs.lease_token = held.token
WHERE jobs.status = 'in_progress';

-- name: insert_pieces
-- A piece stored already is left as it is.
INSERT INTO job_pieces (job_id, seq, text)
SELECT j.value, s.value, t.value
FROM json_each(:job_ids) AS j
JOIN json_each(:seqs) AS s ON s.key = j.key
JOIN json_each(:texts) AS t ON t.key = j.key
WHERE true
ON CONFLICT (job_id, seq) DO NOTHING;

-- name: pieces
-- Each followed job's status and its pieces from seq :after on, in one read.
SELECT j.id, j.status, p.seq, p.text
FROM json_each(:ids) AS w
JOIN json_each(:after) AS a ON a.key = w.key
JOIN jobs AS j ON j.id = w.value
LEFT JOIN job_pieces AS p ON p.job_id = j.id AND p.seq >= a.value
ORDER BY j.id, p.seq;
