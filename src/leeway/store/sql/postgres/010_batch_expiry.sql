-- OpenAI-shaped batches expire: one whose items are not all final at expires_at has its queued items
-- cancelled (running ones finish) and expired_at set. Reference-shaped batches never expire (NULL).
ALTER TABLE batches ADD COLUMN expires_at DOUBLE PRECISION;
ALTER TABLE batches ADD COLUMN expired_at DOUBLE PRECISION;
-- batches made before this migration: the default expiry (24 h window plus an hour's grace)
UPDATE batches SET expires_at = created_at + 90000 WHERE shape = 'openai';
CREATE INDEX batches_to_expire ON batches (expires_at)
WHERE finished_at IS NULL AND expired_at IS NULL AND cancelled_at IS NULL;
