-- Batches and files on PostgreSQL (leeway.store.postgres_batches); as sql/sqlite/batches.sql.

-- name: insert_batch
INSERT INTO batches (id, tenant, shape, endpoint, label, completion_window, metadata, input_file_id,
                     created_at, expires_at, webhook_url, webhook_token)
VALUES (:id, :tenant, :shape, :endpoint, :label, :completion_window, :metadata, :input_file_id,
        :created_at, :expires_at, :webhook_url, :webhook_token);

-- name: commit_items
UPDATE jobs SET status = 'queued' WHERE batch_id = :id AND status = 'staged';

-- name: commit_batch
UPDATE batches SET committed = 1, total = :total, n_queued = :total WHERE id = :id;

-- name: fail_batch
-- An OpenAI-shaped batch whose input was invalid, inserted again once its staging was discarded:
-- kept with no items, final at once; a batch webhook it names is called
-- (batches_completion_webhook).
UPDATE batches SET committed = 1, failed_at = :now, errors = :errors, finished_at = :now,
                   finalized_at = :now
WHERE id = :id AND committed = 0;

-- name: delete_batch_items
-- Deleting a batch that ended: its items go with it (their keys are freed by job_deleted_frees_key).
DELETE FROM jobs WHERE batch_id = :id AND EXISTS (
    SELECT 1 FROM batches WHERE id = :id AND tenant = :tenant AND committed = 1
                            AND finished_at IS NOT NULL);

-- name: delete_batch
DELETE FROM batches WHERE id = :id AND tenant = :tenant AND committed = 1
                      AND finished_at IS NOT NULL;

-- name: free_batch_key
DELETE FROM idempotency_keys WHERE subject = :id AND tenant = :tenant;

-- name: discard_items
DELETE FROM jobs WHERE batch_id = :id AND status = 'staged';

-- name: discard_batch
DELETE FROM batches WHERE id = :id AND committed = 0;

-- name: discard_abandoned_items
-- At start-up: batches whose upload was cut off by a stop (their client never heard "accepted").
-- Other processes may be taking uploads right now: only batches older than :before go.
DELETE FROM jobs WHERE status = 'staged'
  AND batch_id IN (SELECT id FROM batches WHERE committed = 0 AND created_at < :before);

-- name: discard_abandoned_batches
DELETE FROM batches WHERE committed = 0 AND created_at < :before;

-- name: get_batch
SELECT * FROM batches WHERE id = :id AND tenant = :tenant AND committed = 1;

-- name: batch_key_holder
SELECT k.fingerprint AS key_fingerprint, b.*
FROM idempotency_keys k LEFT JOIN batches b ON b.id = k.subject
WHERE k.tenant = :tenant AND k.key = :key;

-- The tenant's batches newest first: the `limit` newest, or the `limit` nearest a cursor on
-- either side of it (created after `after_id`, or before `before_id`).
-- name: list_batches
SELECT * FROM batches WHERE tenant = :tenant AND committed = 1
  AND (:shape::text IS NULL OR shape = :shape)
ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: list_batches_before
SELECT * FROM batches WHERE tenant = :tenant AND committed = 1
  AND (:shape::text IS NULL OR shape = :shape)
  AND (created_at, id) < (SELECT created_at, id FROM batches WHERE id = :cursor AND tenant = :tenant)
ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: list_batches_after
SELECT * FROM (SELECT * FROM batches WHERE tenant = :tenant AND committed = 1
                 AND (:shape::text IS NULL OR shape = :shape)
                 AND (created_at, id) > (SELECT created_at, id FROM batches WHERE id = :cursor AND tenant = :tenant)
               ORDER BY created_at, id LIMIT :limit) AS page
ORDER BY created_at DESC, id DESC;

-- name: cancel_batch_items
-- Items still waiting are cancelled; running ones finish.
-- Billed as a cancel bills (what earlier runs of an item generated), at the prices now.
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
                                       AND p.win = jobs.completion_window), 0)
WHERE batch_id = :id AND status = 'queued';

-- name: cancel_batch
-- A batch that already finished (or expired) stays as it is.
UPDATE batches SET cancelled_at = coalesce(cancelled_at, :now)
WHERE id = :id AND tenant = :tenant AND committed = 1 AND finished_at IS NULL AND expired_at IS NULL;

-- name: expire_batches
-- Batches past their expiry with items still queued or running (and not cancelled): the items still
-- queued are then cancelled by expire_batch_items (running ones finish). Row locks make a batch
-- expire once, whichever processes look at the same time.
UPDATE batches SET expired_at = :now
WHERE expires_at <= :now AND finished_at IS NULL AND expired_at IS NULL AND cancelled_at IS NULL
  AND committed = 1
RETURNING id;

-- name: expire_batch_items
-- Billed as a cancel bills (what earlier runs of an item generated), at the prices now.
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
                                       AND p.win = jobs.completion_window), 0)
WHERE batch_id = ANY(:ids::text[]) AND status = 'queued';

-- name: batch_item_states
SELECT batch_index, custom_id, status FROM jobs
WHERE batch_id = :id AND batch_index > :after ORDER BY batch_index LIMIT :limit;

-- name: batch_item_jobs
SELECT * FROM jobs WHERE batch_id = :id AND batch_index > :after ORDER BY batch_index LIMIT :limit;

-- name: batch_item
SELECT * FROM jobs WHERE batch_id = :id AND custom_id = :custom_id AND tenant = :tenant;

-- name: batches_to_finalize
SELECT * FROM batches WHERE finalized_at IS NULL AND finished_at IS NOT NULL AND committed = 1;

-- name: finalize_batch
UPDATE batches SET finalized_at = :now, output_file_id = :output_file_id,
                   error_file_id = :error_file_id
WHERE id = :id AND finalized_at IS NULL;

-- name: insert_file
INSERT INTO files (id, tenant, purpose, filename, bytes, created_at)
VALUES (:id, :tenant, :purpose, :filename, :bytes, :created_at);

-- name: file_key_holder
SELECT k.fingerprint AS key_fingerprint, f.*
FROM idempotency_keys k LEFT JOIN files f ON f.id = k.subject
WHERE k.tenant = :tenant AND k.key = :key;

-- name: get_file
SELECT * FROM files WHERE id = :id AND tenant = :tenant;

-- name: list_files
SELECT * FROM files WHERE tenant = :tenant AND (:purpose::text IS NULL OR purpose = :purpose)
  AND (:cursor::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM files WHERE id = :cursor))
ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: delete_file
DELETE FROM files WHERE id = :id AND tenant = :tenant;
