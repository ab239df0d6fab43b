-- name: insert_job
INSERT INTO jobs (id, tenant, surface, model, status, completion_window, requested_window,
                  window_rank, created_at, deadline, prompt_tokens, request, metadata, echo)
VALUES (:id, :tenant, :surface, :model, :status, :completion_window, :requested_window,
        :window_rank, :created_at, :deadline, :prompt_tokens, :request, :metadata, :echo);

-- name: get_job
SELECT * FROM jobs WHERE id = :id AND tenant = :tenant;

-- name: expire_leases
-- Claims whose holder stopped renewing go back to the queue, or fail once they used every attempt.
UPDATE jobs
SET status        = CASE WHEN attempts >= :max_attempts THEN 'failed' ELSE 'queued' END,
    error         = CASE WHEN attempts >= :max_attempts THEN :error ELSE NULL END,
    completed_at  = CASE WHEN attempts >= :max_attempts THEN :now ELSE NULL END,
    lease_token   = NULL,
    lease_expires = NULL
WHERE status = 'in_progress' AND lease_expires < :now
RETURNING id, status;

-- Every query that reads the queue skips the items of a batch still being taken in (uncommitted):
-- they are stored 'queued' from the start, and the batch's commit makes them visible.
-- name: claim
UPDATE jobs
SET status = 'in_progress', lease_token = :token, lease_expires = :expires, attempts = attempts + 1,
    started_at = coalesce(started_at, :now)
WHERE rowid IN (SELECT rowid FROM jobs WHERE status = 'queued' AND model = :model
                AND (batch_id IS NULL OR batch_id NOT IN (SELECT id FROM batches WHERE committed = 0))
                ORDER BY window_rank, deadline LIMIT :limit)
RETURNING *;

-- What the policy chooses from, in three parts (each an index range): asap work, the earliest
-- deadlines still ahead, and the earliest already missed (so neither hides the other).
-- name: queued_asap
SELECT * FROM jobs WHERE status = 'queued' AND model = :model AND window_rank = 0
  AND (batch_id IS NULL OR batch_id NOT IN (SELECT id FROM batches WHERE committed = 0))
ORDER BY deadline LIMIT :limit;

-- name: queued_ahead
SELECT * FROM jobs WHERE status = 'queued' AND model = :model AND deadline >= :now
  AND (batch_id IS NULL OR batch_id NOT IN (SELECT id FROM batches WHERE committed = 0))
ORDER BY deadline LIMIT :limit;

-- name: queued_late
SELECT * FROM jobs WHERE status = 'queued' AND model = :model AND deadline < :now
  AND (batch_id IS NULL OR batch_id NOT IN (SELECT id FROM batches WHERE committed = 0))
ORDER BY deadline LIMIT :limit;

-- name: claim_ids
-- By primary key: `+` keeps the planner off the queue indexes (with 100,000 items queued it walked
-- every queued job of the model, ~40 ms a claim, instead of looking up a few ids).
UPDATE jobs
SET status = 'in_progress', lease_token = :token, lease_expires = :expires, attempts = attempts + 1,
    started_at = coalesce(started_at, :now)
WHERE id IN (SELECT value FROM json_each(:ids)) AND +status = 'queued' AND +model = :model
RETURNING *;

-- name: count_queued
-- (less the items of the tenant's batches being taken in: all queued, none seen yet)
SELECT (SELECT count(*) FROM jobs WHERE tenant = :tenant AND status = 'queued')
     - (SELECT count(*) FROM jobs WHERE batch_id IN
            (SELECT id FROM batches WHERE committed = 0 AND tenant = :tenant));

-- name: queue_depths
SELECT window_rank, count(*) FROM jobs WHERE status = 'queued' GROUP BY window_rank;

-- name: unseen_depths
-- The items of batches being taken in, by window (queue_depths less these is what waits).
SELECT window_rank, count(*) FROM jobs
WHERE batch_id IN (SELECT id FROM batches WHERE committed = 0) GROUP BY window_rank;

-- name: renew
UPDATE jobs SET lease_expires = :expires
WHERE id = :id AND lease_token = :token AND status = 'in_progress'
RETURNING id;

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
WHERE id = :id AND lease_token = :token AND status = 'in_progress';

-- name: cancel
UPDATE jobs SET status = 'cancelled', completed_at = :now, lease_token = NULL, lease_expires = NULL
WHERE id = :id AND tenant = :tenant AND status IN ('queued', 'in_progress');

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

-- name: hold_engines
-- Take the engine's lease if it is free or expired, or extend ours; returns a row only if held.
INSERT INTO engine_leases (engine_id, holder, expires) VALUES (:engine_id, :holder, :until)
ON CONFLICT (engine_id) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
WHERE engine_leases.holder = excluded.holder OR engine_leases.expires < :now
RETURNING engine_id;
