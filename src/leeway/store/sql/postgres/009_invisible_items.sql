-- SQLite's 009 stores batch items queued but unseen while their batch is uncommitted; PostgreSQL
-- keeps staging them with COPY and queueing them at the commit: the number is kept so both
-- dialects' migrations line up.
SELECT 1;
