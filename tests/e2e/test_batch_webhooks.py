"""A batch-level webhook: when every item of a batch is final (and, in OpenAI's shape, its output
files are written), the batch's `metadata.completion_webhook` gets the batch as GET shows it, signed;
its items' own webhooks are called as each finishes."""

from __future__ import annotations

import httpx
import orjson
from openai import OpenAI
from standardwebhooks import Webhook

from tests.e2e.conftest import ALIAS, MODEL
from tests.e2e.server import LeewayServer
from tests.e2e.test_webhooks import FAST, secret
from tests.receiver import receiving


def test_batch_webhooks_in_both_shapes(tmp_path):
    config = FAST + f'\n[[models]]\nid = "{MODEL}"\naliases = ["{ALIAS}"]\n'
    server = LeewayServer(tmp_path, config, ("--engine", "fake")).start()
    headers = {"Authorization": f"Bearer {server.key}"}
    try:
        with receiving() as rx, httpx.Client(base_url=server.base_url, headers=headers) as http:
            item_hook = {"completion_webhook": rx.url("/item")}
            requests = [
                {
                    "custom_id": f"r{i}",
                    "params": {"model": ALIAS, "input": "hi", "metadata": item_hook},
                }
                for i in range(3)
            ]
            batch = http.post(
                "/batches",
                json={
                    "endpoint": "/v1/responses",
                    "requests": requests,
                    "metadata": {"completion_webhook": rx.url("/batch"), "webhook_token": "b7"},
                },
            ).json()
            [got] = rx.wait_for("/batch", 1)
            body = orjson.loads(got.body)
            assert body["id"] == batch["id"] and body["status_counts"]["COMPLETED"] == 3
            assert got.headers["authorization"] == "Bearer b7"
            assert Webhook(secret(server)).verify(got.body, got.headers)["id"] == batch["id"]
            assert len(rx.wait_for("/item", 3)) == 3

            client = OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)
            line = {"custom_id": "x", "method": "POST", "url": "/v1/responses",
                    "body": {"model": MODEL, "input": "hi"}}  # fmt: skip
            file = client.files.create(file=("in.jsonl", orjson.dumps(line)), purpose="batch")
            created = client.batches.create(
                input_file_id=file.id,
                endpoint="/v1/responses",
                completion_window="24h",
                metadata={"completion_webhook": rx.url("/openai")},
            )
            [got] = rx.wait_for("/openai", 1)
            body = orjson.loads(got.body)
            assert body["id"] == created.id and body["object"] == "batch"
            assert body["status"] == "completed" and body["output_file_id"]

            bad = http.post(
                "/batches",
                json={
                    "endpoint": "/v1/responses",
                    "requests": requests,
                    "metadata": {"completion_webhook": "http://10.0.0.1/x"},
                },
            )
            assert bad.status_code == 400
            assert bad.json()["error"]["param"] == "metadata.completion_webhook"
    finally:
        server.stop()
