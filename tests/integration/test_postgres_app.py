"""The whole app on PostgreSQL (store_url): the API on the server's loop and the dispatcher on its
own thread and loop, each with its own connections, and a batch through the same database."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.testclient import TestClient

from leeway.app import build_app
from tests.conftest import FAKE_MODEL, add_keys, fake_settings


def wait_final(http: TestClient, path: str, headers: dict[str, str]) -> dict:
    for _ in range(400):
        body = http.get(path, headers=headers).json()
        if body["status"] not in ("queued", "in_progress", "validating"):
            return body
        time.sleep(0.025)
    raise AssertionError(f"{path} never finished: {body}")


def test_responses_and_a_batch_complete_on_postgres(tmp_path: Path, pg_url: str):
    settings = fake_settings(tmp_path, store_url=pg_url)
    [key] = add_keys(settings, "alpha")
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(build_app(settings)) as http:
        created = http.post(
            "/v1/responses",
            headers={**headers, "Idempotency-Key": "k1"},
            json={"model": FAKE_MODEL, "input": "hi", "background": True},
        )
        assert created.status_code == 202, created.text
        done = wait_final(http, f"/v1/responses/{created.json()['id']}", headers)
        assert done["status"] == "completed" and done["output"][0]["content"][0]["text"]
        again = http.post(
            "/v1/responses",
            headers={**headers, "Idempotency-Key": "k1"},
            json={"model": FAKE_MODEL, "input": "hi", "background": True},
        )
        assert again.json()["id"] == created.json()["id"]
        requests = [
            {"custom_id": f"c{i}", "params": {"model": FAKE_MODEL, "input": f"q{i}"}}
            for i in range(5)
        ]
        batch = http.post(
            "/v1/batches",
            headers=headers,
            json={"endpoint": "/v1/responses", "requests": requests},
        )
        assert batch.status_code in (200, 201, 202), batch.text
        for _ in range(400):
            got = http.get(f"/v1/batches/{batch.json()['id']}", headers=headers).json()
            if got["status_counts"]["COMPLETED"] == 5:
                break
            time.sleep(0.025)
        assert got["status_counts"]["COMPLETED"] == 5, got
