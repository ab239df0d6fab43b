"""Named queries to the numbered parameters asyncpg takes."""

from __future__ import annotations

from leeway.store.queries import load_queries, numbered


def test_names_become_numbers_once_each_and_casts_stay():
    q = numbered("SELECT :a::text, x::int FROM t WHERE b = :b AND c = :a AND d = ANY(:ids::text[])")
    assert q.sql == "SELECT $1::text, x::int FROM t WHERE b = $2 AND c = $1 AND d = ANY($3::text[])"
    assert q.names == ("a", "b", "ids")
    assert q.args({"b": 2, "a": 1, "ids": [], "unused": 0}) == [1, 2, []]


def test_every_postgres_query_has_a_sqlite_twin_or_is_postgres_only():
    postgres, sqlite = load_queries("postgres"), load_queries("sqlite")
    # sqlite's three queued_* in one query; locks SQLite's single writer makes needless; SQLite
    # stores batch items queued from the start (unseen until the commit), PostgreSQL queues them then;
    # append_deltas is SQLite's delta_fence and insert_delta in one statement
    postgres_only = {
        *("queued", "lock_delivery", "lock_secrets", "finish_many", "commit_items"),
        "append_deltas",
    }
    assert set(postgres) - set(sqlite) <= postgres_only
