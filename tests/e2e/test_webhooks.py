"""Completion webhooks against `leeway serve` as a process, driven with the official SDKs: the URL
guard with an empty allow-list, deliveries that survive a SIGKILL, and the real model."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from openai import OpenAI
from standardwebhooks import Webhook

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer, free_port
from tests.receiver import Reply, receiving

FAST = """
poll_seconds = 0.2
lease_seconds = 2

[webhooks]
allow = ["127.0.0.0/8"]
timeout_seconds = 1
backoff_base_seconds = 0.2
backoff_max_seconds = 0.5
poll_seconds = 0.05
"""


def secret(server: LeewayServer, tenant: str = "default") -> str:
    cmd = [sys.executable, "-m", "leeway", "keys", "webhook-secret", "--tenant", tenant]
    cmd += ["--data-dir", str(server.data_dir), "--config", str(server.config)]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def deliveries(server: LeewayServer, job_id: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{server.base_url}/webhooks/deliveries",
        params={"job_id": job_id},
        headers={"Authorization": f"Bearer {server.key}"},
    )
    r.raise_for_status()
    return list(r.json()["data"])


def settled(server: LeewayServer, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := deliveries(server, job_id)) and found[0]["status"] != "pending":
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"still pending: {deliveries(server, job_id)}")


def test_the_guard_with_an_empty_allow_list(tmp_path: Path):
    server = LeewayServer(tmp_path, "", ("--engine", "fake")).start()
    try:
        client = OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)
        with receiving() as rx:
            for url in (
                rx.url(),
                f"http://[::1]:{rx.port}/",
                f"http://[::ffff:127.0.0.1]:{rx.port}/",
                f"http://2130706433:{rx.port}/",
                "http://169.254.169.254/latest/meta-data/",
                "http://10.0.0.1/",
                "http://0.0.0.0/",
            ):
                with pytest.raises(openai.BadRequestError) as refused:
                    client.responses.create(
                        model=MODEL,
                        input="hi",
                        background=True,
                        metadata={"completion_webhook": url},
                    )
                assert refused.value.param == "metadata.completion_webhook", url  # type: ignore[attr-defined]
            # a name that resolves to loopback: accepted, then a failed delivery, no connection
            r = client.responses.create(
                model=MODEL,
                input="hi",
                background=True,
                metadata={"completion_webhook": f"http://localhost:{rx.port}/hook"},
            )
            delivery = settled(server, r.id)
            time.sleep(0.5)
            assert rx.connections == 0
        assert delivery["status"] == "failed" and len(delivery["attempts"]) == 1
        assert "loopback" in delivery["attempts"][0]["error"]
    finally:
        server.stop()


def test_pending_deliveries_survive_a_sigkill(tmp_path: Path):
    port = free_port()  # the receiver is down: nothing listens here yet
    server = LeewayServer(tmp_path, FAST, ("--engine", "fake")).start()
    try:
        client = OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)
        hook = {"completion_webhook": f"http://127.0.0.1:{port}/after", "webhook_token": "t0k"}
        ids = [
            client.responses.create(model=MODEL, input=f"n{i}", background=True, metadata=hook).id
            for i in range(3)
        ]
        for job_id in ids:  # each is final and has failed at least one attempt
            for _ in range(400):
                if (found := deliveries(server, job_id)) and found[0]["attempts"]:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError(f"no attempt for {job_id}")
        server.crash()
        with receiving(port=port) as rx:
            server.start()
            got = rx.wait_for("/after", 3)
            signing = secret(server)
            for job_id in ids:
                assert settled(server, job_id)["status"] == "delivered"
            by_job = {r.body: r for r in got}
            for job_id in ids:
                body = httpx.get(
                    f"{server.base_url}/responses/{job_id}",
                    headers={"Authorization": f"Bearer {server.key}"},
                ).content
                request = by_job[body]  # the body is exactly the GET
                assert Webhook(signing).verify(request.body, request.headers)["id"] == job_id
                assert request.headers["authorization"] == "Bearer t0k"
            time.sleep(0.5)
            assert len(rx.to("/after")) == 3  # once each
    finally:
        server.stop()


def test_an_attempt_cut_off_by_a_sigkill_is_sent_again_with_the_same_id(tmp_path: Path):
    with receiving({"/slow": [Reply(200, delay=30.0), Reply(200)]}) as rx:
        server = LeewayServer(tmp_path, FAST, ("--engine", "fake")).start()
        try:
            client = OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)
            r = client.responses.create(
                model=MODEL,
                input="hi",
                background=True,
                metadata={"completion_webhook": rx.url("/slow")},
            )
            [first] = rx.wait_for("/slow", 1)  # in flight when the server dies
            server.crash()
            server.start()
            _, second = rx.wait_for("/slow", 2)  # once its lease ran out (1.5 × 1 s + 1 s)
            assert second.headers["webhook-id"] == first.headers["webhook-id"]
            delivery = settled(server, r.id)
            assert delivery["status"] == "delivered"
            assert [a["status_code"] for a in delivery["attempts"]] == [
                200
            ]  # the cut-off one left no record
        finally:
            server.stop()


REAL = """
[[models]]
id = "HuggingFaceTB/SmolLM2-135M-Instruct"
parallel = 4
context = 512

[webhooks]
allow = ["127.0.0.0/8"]
"""


@pytest.mark.slow
def test_the_real_model_delivers_responses_and_messages(tmp_path: Path):
    with receiving() as rx:
        server = LeewayServer(tmp_path, REAL).start()
        try:
            client = OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)
            r = client.responses.create(
                model=MODEL,
                input="Name a color.",
                background=True,
                max_output_tokens=16,
                metadata={"completion_webhook": rx.url("/resp"), "webhook_token": "abc"},
            )
            [got] = rx.wait_for("/resp", 1, timeout=120)
            get = httpx.get(
                f"{server.base_url}/responses/{r.id}",
                headers={"Authorization": f"Bearer {server.key}"},
            )
            assert got.body == get.content and get.json()["status"] == "completed"
            assert got.headers["authorization"] == "Bearer abc"
            signing = secret(server)
            assert Webhook(signing).verify(got.body, got.headers)["output"][0]["content"][0]["text"]
            claude = anthropic.Anthropic(
                base_url=server.base_url.removesuffix("/v1"), api_key=server.key, max_retries=0
            )
            message = claude.messages.create(
                model=MODEL,
                max_tokens=16,
                messages=[{"role": "user", "content": "Say hi."}],
                metadata={"completion_webhook": rx.url("/msg")},  # type: ignore[typeddict-unknown-key]
            )
            [hooked] = rx.wait_for("/msg", 1, timeout=120)
            body = Webhook(signing).verify(hooked.body, hooked.headers)
            assert (
                body["id"] == message.id and body["content"][0]["text"] == message.content[0].text
            )  # type: ignore[union-attr]
        finally:
            server.stop()
