-- Tenants and API keys (leeway.store.keys). Both dialects ship these names with the same
-- parameters; a list parameter is bound as JSON text here (json_each).

-- name: insert_tenant
-- Nothing is inserted if the id is taken (the caller reads who holds it).
INSERT INTO tenants (id, name, created_at) VALUES (:id, :name, :now)
ON CONFLICT (id) DO NOTHING;

-- name: get_tenant
SELECT * FROM tenants WHERE id = :id;

-- name: list_tenants
-- Oldest first, from just after the cursor tenant :after.
SELECT * FROM tenants
WHERE (:include_archived OR archived_at IS NULL)
  AND (:after IS NULL OR (created_at, id) > (SELECT created_at, id FROM tenants WHERE id = :after))
ORDER BY created_at, id LIMIT :limit;

-- name: rename_tenant
UPDATE tenants SET name = :name WHERE id = :id RETURNING *;

-- name: archive_tenant
UPDATE tenants SET archived_at = coalesce(archived_at, :now) WHERE id = :id RETURNING *;

-- name: insert_key
INSERT INTO api_keys (id, key_hash, tenant, name, redacted, admin, created_at, expires_at)
VALUES (:id, :key_hash, :tenant, :name, :redacted, :admin, :created_at, :expires_at);

-- name: key_holder
-- The key a request presents, with its tenant's state (a key of an archived tenant is refused).
SELECT k.*, t.archived_at AS tenant_archived_at
FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant
WHERE k.key_hash = :key_hash;

-- name: get_key
SELECT * FROM api_keys WHERE id = :id;

-- name: list_keys
-- Oldest first, from just after the cursor key :after; :tenant and :admin NULL: any.
SELECT * FROM api_keys
WHERE (:tenant IS NULL OR tenant = :tenant) AND (:admin IS NULL OR admin = :admin)
  AND (:include_revoked OR revoked_at IS NULL)
  AND (:after IS NULL OR (created_at, id) > (SELECT created_at, id FROM api_keys WHERE id = :after))
ORDER BY created_at, id LIMIT :limit;

-- name: revoke_key
UPDATE api_keys SET revoked_at = coalesce(revoked_at, :now) WHERE id = :id RETURNING *;

-- name: touch_keys
-- Last used: written at most once per key until :before (a minute ago), whoever writes it.
UPDATE api_keys SET last_used_at = :now
WHERE id IN (SELECT value FROM json_each(:ids))
  AND (last_used_at IS NULL OR last_used_at < :before);

-- name: count_keys
SELECT count(*) FROM api_keys;
