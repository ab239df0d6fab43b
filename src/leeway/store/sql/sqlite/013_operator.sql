-- Leeway run as a service: tenants (OpenAI's projects), API keys with ids, names, expiry and
-- revocation, each job's key and the prices it was billed at, and usage rolled up per bucket.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,      -- what keys, jobs and [tenant_limits.<id>] name
    name        TEXT NOT NULL,
    created_at  REAL NOT NULL,
    archived_at REAL                   -- set: its keys stop working
);
INSERT INTO tenants (id, name, created_at)
SELECT tenant, tenant, min(created_at) FROM api_keys GROUP BY tenant;

CREATE TABLE keys_013 (
    id           TEXT PRIMARY KEY,     -- key_…, what lists and revocations name
    key_hash     TEXT NOT NULL UNIQUE, -- SHA-256 of the key (the key itself is never stored)
    tenant       TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    redacted     TEXT NOT NULL,        -- the key's first characters, to recognise it by
    admin        INTEGER NOT NULL DEFAULT 0,  -- 1: may use the admin routes, for every tenant
    created_at   REAL NOT NULL,
    expires_at   REAL,
    revoked_at   REAL,
    last_used_at REAL                  -- written at most once a minute per key
);
INSERT INTO keys_013 (id, key_hash, tenant, redacted, created_at)
SELECT 'key_' || lower(hex(randomblob(12))), key_hash, tenant, 'lw-…', created_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE keys_013 RENAME TO api_keys;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at, id);

ALTER TABLE jobs ADD COLUMN key_id TEXT;         -- the key that created it
ALTER TABLE jobs ADD COLUMN input_price REAL;    -- per million tokens, as configured when it
ALTER TABLE jobs ADD COLUMN output_price REAL;   -- became final (a later price change keeps them)
ALTER TABLE jobs ADD COLUMN cancelled_run TEXT;  -- the lease of the run a cancel stopped: that
                                                 -- run's tokens are added once, when it ends

-- Usage per bucket of 1 minute, 1 hour and 1 day (UTC), kept by jobs_usage_rolled_up: what the
-- usage and costs APIs, budgets and the metrics read (a job deleted later stays counted).
CREATE TABLE usage_buckets (
    width             INTEGER NOT NULL,    -- seconds: 60, 3600 or 86400
    start             INTEGER NOT NULL,    -- epoch seconds, a multiple of width
    tenant            TEXT NOT NULL,
    model             TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    key_id            TEXT NOT NULL,       -- '' for jobs made before keys had ids
    surface           TEXT NOT NULL,
    batch_id          TEXT NOT NULL,       -- '' for jobs outside a batch
    requests          INTEGER NOT NULL,    -- jobs that became final
    input_tokens      INTEGER NOT NULL,
    output_tokens     INTEGER NOT NULL,
    input_cost        REAL NOT NULL,       -- USD
    output_cost       REAL NOT NULL,
    PRIMARY KEY (width, start, tenant, model, completion_window, key_id, surface, batch_id)
) WITHOUT ROWID;
CREATE INDEX usage_buckets_by_tenant ON usage_buckets (width, tenant, start);

-- The jobs already final are counted (unpriced: they were never billed).
INSERT INTO usage_buckets
SELECT w.width, CAST(coalesce(completed_at, created_at) / w.width AS INTEGER) * w.width,
       tenant, model, completion_window, '', surface, coalesce(batch_id, ''),
       count(*), sum(coalesce(input_tokens, 0)), sum(coalesce(output_tokens, 0)), 0, 0
FROM jobs, (SELECT 60 AS width UNION ALL SELECT 3600 UNION ALL SELECT 86400) AS w
WHERE status IN ('completed', 'failed', 'incomplete', 'cancelled')
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

CREATE TRIGGER jobs_usage_rolled_up
AFTER UPDATE OF status, input_tokens, output_tokens ON jobs
WHEN NEW.status IN ('completed', 'failed', 'incomplete', 'cancelled')
 AND (OLD.status NOT IN ('completed', 'failed', 'incomplete', 'cancelled')
      OR NEW.input_tokens IS NOT OLD.input_tokens OR NEW.output_tokens IS NOT OLD.output_tokens)
BEGIN
    INSERT INTO usage_buckets
    SELECT w.width, CAST(d.at / w.width AS INTEGER) * w.width, NEW.tenant, NEW.model,
           NEW.completion_window, coalesce(NEW.key_id, ''), NEW.surface,
           coalesce(NEW.batch_id, ''), d.requests, d.input_tokens, d.output_tokens,
           d.input_tokens * d.input_price / 1e6, d.output_tokens * d.output_price / 1e6
    FROM (SELECT 60 AS width UNION ALL SELECT 3600 UNION ALL SELECT 86400) AS w,
         (SELECT coalesce(NEW.completed_at, NEW.created_at) AS at,
                 OLD.status NOT IN ('completed', 'failed', 'incomplete', 'cancelled') AS requests,
                 coalesce(NEW.input_price, 0) AS input_price,
                 coalesce(NEW.output_price, 0) AS output_price,
                 coalesce(NEW.input_tokens, 0) - CASE
                     WHEN OLD.status IN ('completed', 'failed', 'incomplete', 'cancelled')
                     THEN coalesce(OLD.input_tokens, 0) ELSE 0 END AS input_tokens,
                 coalesce(NEW.output_tokens, 0) - CASE
                     WHEN OLD.status IN ('completed', 'failed', 'incomplete', 'cancelled')
                     THEN coalesce(OLD.output_tokens, 0) ELSE 0 END AS output_tokens) AS d
    WHERE true
    ON CONFLICT (width, start, tenant, model, completion_window, key_id, surface, batch_id)
    DO UPDATE SET requests      = requests + excluded.requests,
                  input_tokens  = input_tokens + excluded.input_tokens,
                  output_tokens = output_tokens + excluded.output_tokens,
                  input_cost    = input_cost + excluded.input_cost,
                  output_cost   = output_cost + excluded.output_cost;
END;
