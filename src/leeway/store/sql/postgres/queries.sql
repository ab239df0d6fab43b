-- Jobs, idempotency keys and engine leases (leeway.store.jobs). Both dialects ship these
-- names with the same parameters; :name parameters are numbered ($1, …) when loaded, and a list
-- parameter is an array. Rows other processes are changing right now are skipped (SKIP LOCKED),
-- never waited for, wherever a dispatcher claims or expires.

-- name: insert_job
INSERT INTO jobs (id, tenant, surface, model, status, completion_window, requested_window,
                  window_rank, created_at, deadline, prompt_tokens, request, metadata, echo,
                  webhook_url, webhook_token, key_id, stored)
VALUES (:id, :tenant, :surface, :model, :status, :completion_window, :requested_window,
        :window_rank, :created_at, :deadline, :prompt_tokens, :request, :metadata, :echo,
        :webhook_url, :webhook_token, :key_id, :stored);

-- name: get_job
SELECT * FROM jobs WHERE id = :id AND tenant = :tenant;

-- name: expire_leases
-- Claims whose holder stopped renewing go back to the queue. If the holder is still alive (it
-- renews its engine leases) the run stalled on this job, which spends an attempt: a job with
-- :max_attempts of them (runs started, less those lost to crashes) fails. If the holder died, the
-- run is not the job's fault: it spends no attempt, it counts a crash, and only a job its holders
-- died running :max_crashes times fails (likely their cause). A job failed here is priced as
-- every final job is (a failed one bills nothing, at its window's prices).
WITH prices AS (
    SELECT * FROM unnest(:price_models::text[], :price_windows::text[], :input_prices::float8[],
                         :output_prices::float8[]) AS p (model, win, input, output))
UPDATE jobs
SET status        = CASE WHEN x.failed THEN 'failed' ELSE 'queued' END,
    error         = CASE WHEN NOT x.failed THEN NULL
                         WHEN x.alive THEN :stalled_error::text ELSE :crashed_error::text END,
    completed_at  = CASE WHEN x.failed THEN :now::float8 ELSE NULL END,
    crashes       = jobs.crashes + CASE WHEN x.alive THEN 0 ELSE 1 END,
    input_price   = CASE WHEN NOT x.failed THEN jobs.input_price
                         ELSE coalesce((SELECT input FROM prices p WHERE p.model = jobs.model
                                        AND p.win = jobs.completion_window), 0) END,
    output_price  = CASE WHEN NOT x.failed THEN jobs.output_price
                         ELSE coalesce((SELECT output FROM prices p WHERE p.model = jobs.model
                                        AND p.win = jobs.completion_window), 0) END,
    lease_token   = NULL,
    lease_expires = NULL,
    lease_holder  = NULL
FROM (SELECT id, alive,
             CASE WHEN alive THEN attempts - crashes >= :max_attempts
                  ELSE crashes + 1 >= :max_crashes END AS failed
      FROM (SELECT j.id, j.attempts, j.crashes,
                   EXISTS (SELECT 1 FROM engine_leases e
                           WHERE e.holder = j.lease_holder AND e.expires >= :now) AS alive
            FROM jobs j WHERE j.status = 'in_progress' AND j.lease_expires < :now
            FOR UPDATE OF j SKIP LOCKED) AS expired) AS x
WHERE jobs.id = x.id
RETURNING jobs.id, jobs.status;

-- name: queued
-- What the policy chooses from, in three parts (each an index range): asap work, the earliest
-- deadlines still ahead, and the earliest already missed (so neither hides the other); one round
-- trip. A job may be in two parts: the caller keeps its first. A batch's items are 'staged' until
-- its commit queues them, so they are unseen here without a filter.
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

-- name: queued_by_window
-- What the strict policy chooses from: window order (asap first), then arrival, which within one
-- window is deadline order (one index range).
SELECT * FROM jobs WHERE status = 'queued' AND model = :model
ORDER BY window_rank, deadline LIMIT :limit;

-- name: queued_by_arrival
-- What the fcfs policy chooses from: arrival order, whatever the window.
SELECT * FROM jobs WHERE status = 'queued' AND model = :model
ORDER BY created_at LIMIT :limit;

-- name: claim_ids
UPDATE jobs
SET status = 'in_progress', lease_token = :token, lease_expires = :expires,
    lease_holder = :holder, attempts = attempts + 1, started_at = coalesce(started_at, :now)
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
-- Fenced: a holder whose lease was taken over changes nothing. Billed at :input_price and
-- :output_price (per million tokens), the model's prices in the job's window now.
UPDATE jobs
SET status = :status, output_text = :output_text, finish = :finish, stop_sequence = :stop_sequence,
    piece_sizes = :piece_sizes, output_calls = :output_calls, input_tokens = :input_tokens,
    output_tokens = :output_tokens, error = :error, completed_at = :now,
    input_price = :input_price, output_price = :output_price,
    output_reasoning = :output_reasoning, reasoning_tokens = :reasoning_tokens,
    lease_token = NULL, lease_expires = NULL, lease_holder = NULL
WHERE id = :id AND lease_token = :token AND status = 'in_progress'
RETURNING *;

-- name: requeue
-- A job that yielded its engine keeps what it generated; no attempt is spent.
UPDATE jobs SET status = 'queued', lease_token = NULL, lease_expires = NULL, lease_holder = NULL,
                attempts = attempts - 1, partial_text = :text, partial_tokens = :tokens,
                partial_piece_sizes = :piece_sizes
WHERE id = :id AND lease_token = :token AND status = 'in_progress';

-- name: release
-- A graceful stop hands its claims back without spending an attempt.
UPDATE jobs SET status = 'queued', lease_token = NULL, lease_expires = NULL, lease_holder = NULL,
                attempts = attempts - 1
FROM unnest(:ids::text[], :tokens::text[]) AS held (id, token)
WHERE jobs.id = held.id AND jobs.lease_token = held.token AND jobs.status = 'in_progress';

-- name: cancel
-- A cancelled job bills what it generated: its prompt if a run started, and what earlier runs kept
-- (partial_tokens), at the prices now; the run it stops adds its own tokens once, when it ends
-- (bill_cancelled_run, fenced by the lease that run held: cancelled_run).
WITH prices AS (
    SELECT * FROM unnest(:price_models::text[], :price_windows::text[], :input_prices::float8[],
                         :output_prices::float8[]) AS p (model, win, input, output))
UPDATE jobs
SET status = 'cancelled', completed_at = :now,
    input_tokens = CASE WHEN started_at IS NULL THEN 0 ELSE prompt_tokens END,
    output_tokens = partial_tokens,
    input_price = coalesce((SELECT input FROM prices p WHERE p.model = jobs.model
                                      AND p.win = jobs.completion_window), 0),
    output_price = coalesce((SELECT output FROM prices p WHERE p.model = jobs.model
                                       AND p.win = jobs.completion_window), 0),
    cancelled_run = CASE WHEN status = 'in_progress' THEN lease_token END,
    lease_token = NULL, lease_expires = NULL, lease_holder = NULL
WHERE id = :id AND tenant = :tenant AND status IN ('queued', 'in_progress');

-- name: bill_cancelled_run
-- What the run a cancel stopped generated (:tokens, earlier runs' included), billed once.
UPDATE jobs SET output_tokens = greatest(output_tokens, :tokens), cancelled_run = NULL
WHERE id = :id AND cancelled_run = :token AND status = 'cancelled';

-- name: delete_job
DELETE FROM jobs WHERE id = :id AND tenant = :tenant;

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
-- Take each engine's lease if it is free or expired, or extend ours; returns the engines held.
INSERT INTO engine_leases (engine_id, holder, expires)
SELECT unnest(:engine_ids::text[]), :holder, :until
ON CONFLICT (engine_id) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
WHERE engine_leases.holder = excluded.holder OR engine_leases.expires < :now
RETURNING engine_id;

-- name: finish_many
-- The grouped-finish hook (PostgreSQL only): ``finish`` for many jobs in one statement, fenced
-- alike; the store's concurrent finishes join one group.
UPDATE jobs
SET status = f.status, output_text = f.output_text, finish = f.finish,
    stop_sequence = f.stop_sequence, piece_sizes = f.piece_sizes, output_calls = f.output_calls,
    input_tokens = f.input_tokens, output_tokens = f.output_tokens, error = f.error,
    completed_at = f.now, input_price = f.input_price, output_price = f.output_price,
    output_reasoning = f.output_reasoning, reasoning_tokens = f.reasoning_tokens,
    lease_token = NULL, lease_expires = NULL, lease_holder = NULL
FROM unnest(:id::text[], :token::text[], :status::text[], :output_text::text[], :finish::text[],
            :stop_sequence::text[], :piece_sizes::text[], :output_calls::text[],
            :input_tokens::int[], :output_tokens::int[], :error::text[], :now::float8[],
            :input_price::float8[], :output_price::float8[], :output_reasoning::text[],
            :reasoning_tokens::int[])
     AS f (id, token, status, output_text, finish, stop_sequence, piece_sizes, output_calls,
           input_tokens, output_tokens, error, now, input_price, output_price, output_reasoning,
           reasoning_tokens)
WHERE jobs.id = f.id AND jobs.lease_token = f.token AND jobs.status = 'in_progress'
RETURNING jobs.*, f.token AS held_token;
