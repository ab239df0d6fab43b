-- Leeway run as a service: tenants (OpenAI's projects), API keys with ids, names, expiry and
-- revocation, each job's key and the prices it was billed at, and usage rolled up per bucket.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,      -- what keys, jobs and [tenant_limits.<id>] name
    name        TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    archived_at DOUBLE PRECISION       -- set: its keys stop working
);
INSERT INTO tenants (id, name, created_at)
SELECT tenant, tenant, min(created_at) FROM api_keys GROUP BY tenant;

ALTER TABLE api_keys ADD COLUMN id TEXT;                     -- key_…, what lists and revocations name
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN redacted TEXT NOT NULL DEFAULT 'lw-…';  -- its first characters
ALTER TABLE api_keys ADD COLUMN admin BOOLEAN NOT NULL DEFAULT false;  -- the admin routes, all tenants
ALTER TABLE api_keys ADD COLUMN expires_at DOUBLE PRECISION;
ALTER TABLE api_keys ADD COLUMN revoked_at DOUBLE PRECISION;
ALTER TABLE api_keys ADD COLUMN last_used_at DOUBLE PRECISION;    -- at most once a minute per key
UPDATE api_keys SET id = 'key_' || substr(md5(random()::text || key_hash), 1, 24);
ALTER TABLE api_keys ALTER COLUMN id SET NOT NULL;
ALTER TABLE api_keys ALTER COLUMN redacted DROP DEFAULT;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_id_key UNIQUE (id);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at, id);

ALTER TABLE jobs ADD COLUMN key_id TEXT;                   -- the key that created it
ALTER TABLE jobs ADD COLUMN input_price DOUBLE PRECISION;  -- per million tokens, as configured when
ALTER TABLE jobs ADD COLUMN output_price DOUBLE PRECISION; -- it became final (kept after a change)
ALTER TABLE jobs ADD COLUMN cancelled_run TEXT;  -- the lease of the run a cancel stopped: that
                                                 -- run's tokens are added once, when it ends

-- Usage per bucket of 1 minute, 1 hour and 1 day (UTC), kept by jobs_usage_rolled_up: what the
-- usage and costs APIs, budgets and the metrics read (a job deleted later stays counted).
CREATE TABLE usage_buckets (
    width             INTEGER NOT NULL,    -- seconds: 60, 3600 or 86400
    start             BIGINT NOT NULL,     -- epoch seconds, a multiple of width
    tenant            TEXT NOT NULL,
    model             TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    key_id            TEXT NOT NULL,       -- '' for jobs made before keys had ids
    surface           TEXT NOT NULL,
    batch_id          TEXT NOT NULL,       -- '' for jobs outside a batch
    requests          BIGINT NOT NULL,     -- jobs that became final
    input_tokens      BIGINT NOT NULL,
    output_tokens     BIGINT NOT NULL,
    input_cost        DOUBLE PRECISION NOT NULL,  -- USD
    output_cost       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (width, start, tenant, model, completion_window, key_id, surface, batch_id)
);
CREATE INDEX usage_buckets_by_tenant ON usage_buckets (width, tenant, start);

-- The jobs already final are counted (unpriced: they were never billed).
INSERT INTO usage_buckets
SELECT w.width, floor(coalesce(completed_at, created_at) / w.width)::bigint * w.width,
       tenant, model, completion_window, '', surface, coalesce(batch_id, ''),
       count(*), sum(coalesce(input_tokens, 0)), sum(coalesce(output_tokens, 0)), 0, 0
FROM jobs CROSS JOIN (VALUES (60), (3600), (86400)) AS w (width)
WHERE status IN ('completed', 'failed', 'incomplete', 'cancelled')
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

-- Once per statement (a group of finishes is one): each job that became final, or whose billed
-- tokens changed while final, adds the difference to its three buckets, in key order.
CREATE FUNCTION jobs_usage_rolled_up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows
                   WHERE status IN ('completed', 'failed', 'incomplete', 'cancelled')) THEN
        RETURN NULL;  -- claims, renewals, a batch's commit: nothing became final
    END IF;
    INSERT INTO usage_buckets AS u
    SELECT w.width, floor(d.at / w.width)::bigint * w.width, d.tenant, d.model,
           d.completion_window, d.key_id, d.surface, d.batch_id, sum(d.requests),
           sum(d.input_tokens), sum(d.output_tokens),
           sum(d.input_tokens * d.input_price / 1e6), sum(d.output_tokens * d.output_price / 1e6)
    FROM (SELECT n.tenant, n.model, n.completion_window, coalesce(n.key_id, '') AS key_id,
                 n.surface, coalesce(n.batch_id, '') AS batch_id,
                 coalesce(n.completed_at, n.created_at) AS at,
                 (o.status NOT IN ('completed', 'failed', 'incomplete', 'cancelled'))::int
                     AS requests,
                 coalesce(n.input_price, 0) AS input_price,
                 coalesce(n.output_price, 0) AS output_price,
                 coalesce(n.input_tokens, 0) - CASE
                     WHEN o.status IN ('completed', 'failed', 'incomplete', 'cancelled')
                     THEN coalesce(o.input_tokens, 0) ELSE 0 END AS input_tokens,
                 coalesce(n.output_tokens, 0) - CASE
                     WHEN o.status IN ('completed', 'failed', 'incomplete', 'cancelled')
                     THEN coalesce(o.output_tokens, 0) ELSE 0 END AS output_tokens
          FROM new_rows n JOIN old_rows o ON o.id = n.id
          WHERE n.status IN ('completed', 'failed', 'incomplete', 'cancelled')
            AND (o.status NOT IN ('completed', 'failed', 'incomplete', 'cancelled')
                 OR n.input_tokens IS DISTINCT FROM o.input_tokens
                 OR n.output_tokens IS DISTINCT FROM o.output_tokens)) AS d
    CROSS JOIN (VALUES (60), (3600), (86400)) AS w (width)
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT (width, start, tenant, model, completion_window, key_id, surface, batch_id)
    DO UPDATE SET requests      = u.requests + excluded.requests,
                  input_tokens  = u.input_tokens + excluded.input_tokens,
                  output_tokens = u.output_tokens + excluded.output_tokens,
                  input_cost    = u.input_cost + excluded.input_cost,
                  output_cost   = u.output_cost + excluded.output_cost;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_usage_rolled_up AFTER UPDATE ON jobs
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION jobs_usage_rolled_up();
