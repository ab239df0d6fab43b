"""The gateway baseline: a minimal FastAPI app that validates a Responses body and commits one SQLite
row per request with ``synchronous=FULL`` (the floor for a validated, durable Python endpoint), and
answers polls by primary key. Run by bench/gateway.py:

    uvicorn bench.baseline_app:app --port 8100   (BASELINE_DB=/tmp/baseline.db)
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

db = sqlite3.connect(
    os.environ.get("BASELINE_DB", "baseline.db"), check_same_thread=False, isolation_level=None
)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, body TEXT, created REAL)")
app = FastAPI()


class Create(BaseModel):
    model: str
    input: str | list[dict[str, Any]]
    max_output_tokens: int | None = None
    background: bool = False


@app.get("/v1/models")
def models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "baseline"}],
    }


@app.post("/v1/responses", status_code=202)
def create(body: Create) -> dict[str, Any]:
    rid = "resp_" + secrets.token_hex(16)
    now = time.time()
    db.execute("INSERT INTO jobs VALUES (?, ?, ?)", (rid, body.model_dump_json(), now))
    return {
        "id": rid,
        "object": "response",
        "created_at": int(now),
        "status": "completed",
        "model": body.model,
        "output": [],
        "background": body.background,
    }


@app.get("/v1/responses/{rid}")
def get(rid: str) -> dict[str, Any]:
    row = db.execute("SELECT body, created FROM jobs WHERE id = ?", (rid,)).fetchone()
    if row is None:
        raise HTTPException(404)
    return {
        "id": rid,
        "object": "response",
        "created_at": int(row[1]),
        "status": "completed",
        "model": json.loads(row[0])["model"],
        "output": [],
    }
