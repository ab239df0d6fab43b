"""Named queries to the numbered parameters asyncpg takes."""

from __future__ import annotations

from leeway.store.queries import load_queries, numbered


def test_names_become_numbers_once_each_and_casts_stay():
    q = numbered("SELECT :a::text, x::int FROM t WHERE b = :b AND c = :a AND d = ANY(:ids::text[])")
    assert q.sql == "SELECT $1::text, x::int FROM t WHERE b = $2 AND c = $1 AND d = ANY($3::text[])"
    assert q.names == ("a", "b", "ids")
    assert q.args({"b": 2, "a": 1, "ids": [], "unused": 0}) == [1, 2, []]


def test_both_dialects_ship_the_same_queries_with_the_same_parameters():
    """One store runs either dialect by query name: each name exists in both, taking the same
    parameters, except each driver's own hook (PostgreSQL's grouped finishes, SQLite's staging)."""
    postgres, sqlite = load_queries("postgres"), load_queries("sqlite")
    hooks = {"finish_many": "postgres", "stage_item": "sqlite"}
    assert set(postgres) ^ set(sqlite) == set(hooks)
    for name in set(postgres) & set(sqlite):
        assert set(numbered(postgres[name]).names) == set(numbered(sqlite[name]).names), name
