-- PostgreSQL's 007 wakes dispatchers in other processes (NOTIFY); SQLite has nothing to do here:
-- the number is kept so both dialects' migrations line up.
SELECT 1;
