-- Which dispatcher fills each engine: an engine is filled by one dispatcher at a time, so its
-- capacity is never counted twice when several dispatcher processes share a fleet.
CREATE TABLE engine_leases (
    engine_id TEXT PRIMARY KEY,
    holder    TEXT NOT NULL,
    expires   REAL NOT NULL
);
