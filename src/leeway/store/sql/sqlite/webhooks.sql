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
UPDATE webhook_deliveries SET next_attempt_at = :until
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'pending' AND next_attempt_at <= :now
RETURNING *;

-- name: lock_delivery
-- Attempts of one delivery are numbered one at a time: SQLite's one writer already does that, so
-- this only reads the row (PostgreSQL locks it).
SELECT id FROM webhook_deliveries WHERE id = :id;

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
WHERE tenant = :tenant AND (:subject_id IS NULL OR subject_id = :subject_id)
ORDER BY created_at DESC, id LIMIT :limit;

-- name: list_attempts
SELECT * FROM webhook_attempts
WHERE delivery_id IN (SELECT value FROM json_each(:ids))
ORDER BY delivery_id, number;

-- name: active_secrets
SELECT secret FROM webhook_secrets
WHERE tenant = :tenant AND (retires_at IS NULL OR retires_at > :now)
ORDER BY created_at DESC, rowid DESC;

-- name: lock_secrets
-- Two first deliveries must not make two secrets: SQLite's one writer already runs them one at a
-- time, so this reads nothing (PostgreSQL takes a lock).
SELECT :tenant WHERE false;

-- name: insert_secret
INSERT INTO webhook_secrets (tenant, secret, created_at) VALUES (:tenant, :secret, :now);

-- name: retire_secrets
UPDATE webhook_secrets SET retires_at = min(coalesce(retires_at, :retires_at), :retires_at)
WHERE tenant = :tenant;

-- name: prune_deliveries
DELETE FROM webhook_deliveries WHERE status != 'pending' AND finished_at < :before;

-- name: prune_secrets
DELETE FROM webhook_secrets WHERE retires_at < :before;
