-- The web dashboard (leeway.store.dashboard). Both dialects ship these names with the same
-- parameters.

-- name: insert_session
INSERT INTO dashboard_sessions (token_hash, key_id, csrf, created_at, expires_at)
VALUES (:token_hash, :key_id, :csrf, :now, :expires_at);

-- name: session_holder
-- A session still within its lifetime, with its key and the key's tenant's state.
SELECT s.csrf, s.created_at AS session_created_at, s.expires_at AS session_expires_at, k.*, t.archived_at AS tenant_archived_at
FROM dashboard_sessions s JOIN api_keys k ON k.id = s.key_id
LEFT JOIN tenants t ON t.id = k.tenant
WHERE s.token_hash = :token_hash AND s.expires_at > :now;

-- name: delete_session
DELETE FROM dashboard_sessions WHERE token_hash = :token_hash;

-- name: prune_sessions
DELETE FROM dashboard_sessions WHERE expires_at <= :now;

-- name: window_counts
-- Jobs waiting and running per window (:tenant NULL: every tenant's).
SELECT completion_window, status, count(*) AS n FROM jobs
WHERE status IN ('queued', 'in_progress') AND (:tenant::text IS NULL OR tenant = :tenant)
GROUP BY completion_window, status;

-- name: running_by_model
SELECT model, count(*) AS n FROM jobs WHERE status = 'in_progress' GROUP BY model;

-- name: window_turns
-- Per window, of the jobs that became completed, incomplete or failed since :since: how many, how
-- many by their deadline (a failed one never), and the turn times (arrival to final state) at the
-- 50th and 95th percentiles (nearest rank).
WITH done AS (
    SELECT completion_window AS win, completed_at - created_at AS turn,
           CASE WHEN status <> 'failed' AND completed_at <= deadline THEN 1 ELSE 0 END AS met
    FROM jobs
    WHERE completed_at >= :since AND status IN ('completed', 'incomplete', 'failed')
      AND (:tenant::text IS NULL OR tenant = :tenant)),
ranked AS (
    SELECT win, turn, met, row_number() OVER (PARTITION BY win ORDER BY turn) AS rn,
           count(*) OVER (PARTITION BY win) AS n
    FROM done)
SELECT win AS completion_window, max(n) AS n, sum(met) AS met,
       min(CASE WHEN rn >= 0.5 * n THEN turn END) AS p50,
       min(CASE WHEN rn >= 0.95 * n THEN turn END) AS p95
FROM ranked GROUP BY win;

-- name: all_batches
-- Every tenant's batches newest first: the newest :limit, or those created before the batch :cursor.
SELECT * FROM batches WHERE committed = 1
  AND (:cursor::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM batches WHERE id = :cursor))
ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: find_batch
SELECT * FROM batches WHERE id = :id AND committed = 1;
