-- Counting a tenant's waiting jobs (its max_queued limit) reads only those index entries.
CREATE INDEX jobs_queued_by_tenant ON jobs (tenant) WHERE status = 'queued';
