-- Completion webhooks: the outbox (leeway.store.outbox). Tables: 005_webhooks.sql.

-- name: insert_delivery
-- For subjects other than jobs (whose deliveries a trigger writes); a caller that must write it
-- atomically with its subject's final state runs this inside that same write.
INSERT INTO webhook_deliveries (id, tenant, subject_kind, subject_id, url, token, body,
                                next_attempt_at, created_at)
VALUES (:id, :tenant, :subject_kind, :subject_id, :url, :token, :body, :next_attempt_at,
        :created_at);

-- name: due_deliveries
SELECT id FROM webhook_deliveries
WHERE status = 'pending' AND next_attempt_at <= :now
ORDER BY next_attempt_at LIMIT :limit;

-- name: lease_deliveries
-- Those still due are leased; those another sender is leasing right now are skipped.
UPDATE webhook_deliveries SET next_attempt_at = :until
WHERE id IN (SELECT id FROM webhook_deliveries
             WHERE id = ANY(:ids::text[]) AND status = 'pending' AND next_attempt_at <= :now
             FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: lock_delivery
-- Attempts of one delivery are numbered one at a time (a late duplicate may record at once).
SELECT id FROM webhook_deliveries WHERE id = :id FOR UPDATE;

-- name: insert_attempt
INSERT INTO webhook_attempts (delivery_id, number, at, duration, status_code, error)
SELECT :id, coalesce(max(number), 0) + 1, :at, :duration, :status_code, :error
FROM webhook_attempts WHERE delivery_id = :id;

-- name: record_delivery
-- A delivery that is no longer pending keeps its outcome (its attempt is still recorded).
UPDATE webhook_deliveries
SET status = :status, attempts = attempts + 1,
    next_attempt_at = coalesce(:next_attempt_at, next_attempt_at),
    finished_at = :finished_at, last_status_code = :status_code, last_error = :error
WHERE id = :id AND status = 'pending';

-- name: list_deliveries
SELECT * FROM webhook_deliveries
WHERE tenant = :tenant AND (:subject_id::text IS NULL OR subject_id = :subject_id)
ORDER BY created_at DESC, id LIMIT :limit;

-- name: list_attempts
SELECT * FROM webhook_attempts
WHERE delivery_id = ANY(:ids::text[])
ORDER BY delivery_id, number;

-- name: active_secrets
SELECT secret FROM webhook_secrets
WHERE tenant = :tenant AND (retires_at IS NULL OR retires_at > :now)
ORDER BY created_at DESC, seq DESC;

-- name: lock_secrets
-- Two first deliveries (in two processes) must not make two secrets.
SELECT pg_advisory_xact_lock(hashtext('webhook_secrets:' || :tenant));

-- name: insert_secret
INSERT INTO webhook_secrets (tenant, secret, created_at) VALUES (:tenant, :secret, :now);

-- name: retire_secrets
UPDATE webhook_secrets SET retires_at = least(coalesce(retires_at, :retires_at), :retires_at)
WHERE tenant = :tenant;

-- name: prune_deliveries
DELETE FROM webhook_deliveries WHERE status != 'pending' AND finished_at < :before;

-- name: prune_secrets
DELETE FROM webhook_secrets WHERE retires_at < :before;
