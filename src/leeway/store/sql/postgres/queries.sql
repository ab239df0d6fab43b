-- Jobs and keys on PostgreSQL (leeway.store.postgres). Parameters are :name, numbered ($1, …) when
-- loaded; ids lists are text[] arrays.

-- name: insert_job
INSERT INTO jobs (id, tenant, surface, model, status, completion_window, requested_window,
                  window_rank, created_at, deadline, prompt_tokens, request, metadata, echo)
VALUES (:id, :tenant, :surface, :model, :status, :completion_window, :requested_window,
        :window_rank, :created_at, :deadline, :prompt_tokens, :request, :metadata, :echo);

-- name: get_job
SELECT * FROM jobs WHERE id = :id AND tenant = :tenant;

-- name: expire_leases
-- Claims whose holder stopped renewing go back to the queue, or fail once they used every attempt.
-- Rows another process is changing right now are left to it (SKIP LOCKED): nobody waits.
UPDATE jobs
SET status        = CASE WHEN attempts >= :max_attempts THEN 'failed' ELSE 'queued' END,
    error         = CASE WHEN attempts >= :max_attempts THEN :error ELSE NULL END,
    completed_at  = CASE WHEN attempts >= :max_attempts THEN :now ELSE NULL END,
    lease_token   = NULL,
    lease_expires = NULL
WHERE id IN (SELECT id FROM jobs WHERE status = 'in_progress' AND lease_expires < :now
             FOR UPDATE SKIP LOCKED)
RETURNING id, status;

-- name: claim
-- Jobs another dispatcher is claiming at the same moment are skipped, not waited for.
UPDATE jobs
SET status = 'in_progress', lease_token = :token, lease_expires = :expires, attempts = attempts + 1,
    started_at = coalesce(started_at, :now)
WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND model = :model
             ORDER BY window_rank, deadline LIMIT :limit FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: queued
-- What the policy chooses from, in three parts (each an index range): asap work, the earliest
-- deadlines still ahead, and the earliest already missed (so neither hides the other); one round
-- trip. A job may be in two parts: the caller keeps its first.
SELECT * FROM (
    (SELECT 0 AS part, * FROM jobs WHERE status = 'queued' AND model = :model AND window_rank = 0
     ORDER BY deadline LIMIT :limit)
    UNION ALL
    (SELECT 1 AS part, * FROM jobs WHERE status = 'queued' AND model = :model AND deadline >= :now
     ORDER BY deadline LIMIT :limit)
    UNION ALL
    (SELECT 2 AS part, * FROM jobs WHERE status = 'queued' AND model = :model AND deadline < :now
     ORDER BY deadline LIMIT :limit)
) parts
ORDER BY part, deadline;

-- name: claim_ids
UPDATE jobs
SET status = 'in_progress', lease_token = :token, lease_expires = :expires, attempts = attempts + 1,
    started_at = coalesce(started_at, :now)
WHERE id IN (SELECT id FROM jobs WHERE id = ANY(:ids::text[]) AND status = 'queued'
               AND model = :model
             FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: count_queued
SELECT count(*) FROM jobs WHERE tenant = :tenant AND status = 'queued';

-- name: queue_depths
SELECT window_rank, count(*) FROM jobs WHERE status = 'queued' GROUP BY window_rank;

-- name: renew
UPDATE jobs SET lease_expires = :expires
FROM unnest(:ids::text[], :tokens::text[]) AS held (id, token)
WHERE jobs.id = held.id AND jobs.lease_token = held.token AND jobs.status = 'in_progress'
RETURNING jobs.id;

-- name: finish
-- Fenced: a holder whose lease was taken over changes nothing.
UPDATE jobs
SET status = :status, output_text = :output_text, finish = :finish, stop_sequence = :stop_sequence,
    deltas = :deltas,
    input_tokens = :input_tokens,
    output_tokens = :output_tokens, error = :error, completed_at = :now,
    lease_token = NULL, lease_expires = NULL
WHERE id = :id AND lease_token = :token AND status = 'in_progress'
RETURNING *;

-- name: requeue
UPDATE jobs SET status = 'queued', lease_token = NULL, lease_expires = NULL, attempts = attempts - 1,
                partial_text = :text, partial_tokens = :tokens, partial_deltas = :deltas
WHERE id = :id AND lease_token = :token AND status = 'in_progress';

-- name: release
-- A graceful stop hands its claims back without spending an attempt.
UPDATE jobs SET status = 'queued', lease_token = NULL, lease_expires = NULL, attempts = attempts - 1
FROM unnest(:ids::text[], :tokens::text[]) AS held (id, token)
WHERE jobs.id = held.id AND jobs.lease_token = held.token AND jobs.status = 'in_progress';

-- name: cancel
-- The job in its state after the cancel (a final job unchanged; no row: no such job).
WITH cancelled AS (
    UPDATE jobs SET status = 'cancelled', completed_at = :now, lease_token = NULL,
                    lease_expires = NULL
    WHERE id = :id AND tenant = :tenant AND status IN ('queued', 'in_progress')
    RETURNING *
)
SELECT * FROM cancelled
UNION ALL
SELECT * FROM jobs WHERE id = :id AND tenant = :tenant AND NOT EXISTS (SELECT FROM cancelled);

-- name: delete_job
DELETE FROM jobs WHERE id = :id AND tenant = :tenant;

-- name: insert_key
INSERT INTO api_keys (key_hash, tenant, created_at) VALUES (:key_hash, :tenant, :now);

-- name: tenant_for_key
SELECT tenant FROM api_keys WHERE key_hash = :key_hash;

-- name: count_keys
SELECT count(*) FROM api_keys;

-- name: insert_idempotency_key
-- Nothing is inserted (and the caller rolls back its job) if another request holds the key.
INSERT INTO idempotency_keys (tenant, key, fingerprint, subject, created_at)
VALUES (:tenant, :key, :fingerprint, :subject, :now)
ON CONFLICT (tenant, key) DO NOTHING;

-- name: idempotency_holder
-- The job a key made, with the fingerprint of the request that made it (a key that made something
-- else, a batch or a file, has another route in its fingerprint: a mismatch).
SELECT k.fingerprint AS key_fingerprint, j.*
FROM idempotency_keys k LEFT JOIN jobs j ON j.id = k.subject
WHERE k.tenant = :tenant AND k.key = :key;

-- name: prune_idempotency_keys
DELETE FROM idempotency_keys WHERE created_at < :before;

-- name: finish_many
-- ``finish`` for many jobs in one statement (the store groups concurrent finishes); fenced alike.
UPDATE jobs
SET status = f.status, output_text = f.output_text, finish = f.finish,
    stop_sequence = f.stop_sequence, deltas = f.deltas, input_tokens = f.input_tokens,
    output_tokens = f.output_tokens, error = f.error, completed_at = f.now,
    lease_token = NULL, lease_expires = NULL
FROM unnest(:id::text[], :token::text[], :status::text[], :output_text::text[], :finish::text[],
            :stop_sequence::text[], :deltas::text[], :input_tokens::int[], :output_tokens::int[],
            :error::text[], :now::float8[])
     AS f (id, token, status, output_text, finish, stop_sequence, deltas, input_tokens,
           output_tokens, error, now)
WHERE jobs.id = f.id AND jobs.lease_token = f.token AND jobs.status = 'in_progress'
RETURNING jobs.*, f.token AS held_token;

-- name: hold_engines
-- Take each engine's lease if it is free or expired, or extend ours; returns the engines held.
INSERT INTO engine_leases (engine_id, holder, expires)
SELECT unnest(:engine_ids::text[]), :holder, :until
ON CONFLICT (engine_id) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
WHERE engine_leases.holder = excluded.holder OR engine_leases.expires < :now
RETURNING engine_id;
