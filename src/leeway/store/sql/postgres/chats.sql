-- Stored chat completions (``GET /v1/chat/completions``): a tenant's finished chat completions made
-- one at a time and not sent ``store: false``, oldest or newest first from just past a cursor
-- completion, filtered by model and by metadata pairs (every pair given must be in the job's).

-- name: list_chats_asc
SELECT * FROM jobs WHERE tenant = :tenant AND surface = 'chat' AND batch_id IS NULL AND stored = 1
  AND status IN ('completed', 'incomplete') AND (:model::text IS NULL OR model = :model)
  AND (:metadata::text IS NULL OR metadata::jsonb @> :metadata::jsonb)
  AND (:cursor::text IS NULL OR (created_at, id) > (
        SELECT created_at, id FROM jobs WHERE id = :cursor AND tenant = :tenant))
ORDER BY created_at ASC, id ASC LIMIT :limit;

-- name: list_chats_desc
SELECT * FROM jobs WHERE tenant = :tenant AND surface = 'chat' AND batch_id IS NULL AND stored = 1
  AND status IN ('completed', 'incomplete') AND (:model::text IS NULL OR model = :model)
  AND (:metadata::text IS NULL OR metadata::jsonb @> :metadata::jsonb)
  AND (:cursor::text IS NULL OR (created_at, id) < (
        SELECT created_at, id FROM jobs WHERE id = :cursor AND tenant = :tenant))
ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: set_metadata
-- A stored job's metadata replaced (``POST /v1/chat/completions/{id}``); what intake read from it
-- (window, webhook) stays as it was.
UPDATE jobs SET metadata = :metadata WHERE id = :id AND tenant = :tenant
RETURNING *;
