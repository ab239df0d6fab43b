-- What the official SDKs offer beyond the reference's minimum (issue 16):
-- an upstream's reasoning text and the tokens it took; whether a chat completion is listed and
-- retrievable (``store: false`` hides it); an OpenAI-shaped batch whose input file was invalid
-- (kept, ``failed``, with its errors); stored chat completions listed by tenant.
ALTER TABLE jobs ADD COLUMN output_reasoning TEXT;    -- the reasoning before the reply
ALTER TABLE jobs ADD COLUMN reasoning_tokens INTEGER; -- of output_tokens, spent reasoning
ALTER TABLE jobs ADD COLUMN stored INTEGER NOT NULL DEFAULT 1;  -- 0: a chat completion not stored

ALTER TABLE batches ADD COLUMN failed_at DOUBLE PRECISION;  -- its input file was invalid
ALTER TABLE batches ADD COLUMN errors TEXT;                 -- JSON [{code, message, param, line}]

CREATE INDEX jobs_stored_chats ON jobs (tenant, created_at, id)
WHERE surface = 'chat' AND batch_id IS NULL AND stored = 1;
