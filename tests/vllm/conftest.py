"""Leeway in front of a real vLLM: one vLLM server (CPU build, SmolLM2) for the whole session,
started on loopback and always stopped, and ``leeway serve`` gateways whose only engine is that
server (``[[engines]] kind = "openai"``, ``flavor = "vllm"``).

These tests need vLLM's own virtualenv and the model converted for it: ``make test-vllm`` makes
both and runs them (it sets ``LEEWAY_VLLM_PYTHON`` and ``LEEWAY_VLLM_MODEL``). Without them every
test here is skipped, saying so; ``make test`` does not need vLLM.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import anthropic
import pytest
from openai import OpenAI

from tests.e2e.server import LeewayServer
from tests.vllm.server import API_KEY, MODEL, VllmServer

KEY_ENV = "LEEWAY_TEST_VLLM_KEY"
VLLM_SEQS = 4  # vLLM's --max-num-seqs: Leeway sends more, so vLLM's own queue orders the rest


def gateway_config(url: str, parallel: int = 16, health_seconds: float = 1.0) -> str:
    """One model, one engine: the vLLM server, sent ``parallel`` requests at once."""
    return f"""
poll_seconds = 0.2
flex_reserve = 0.0      # flex may fill the engine: an asap request must take a flex job's place
off_peak_hours = []

[[models]]
id = "{MODEL}"
context = 2048
parallel = {parallel}

[[engines]]
kind = "openai"
model = "{MODEL}"
id = "vllm-1"
url = "{url}"
flavor = "vllm"
api_key_env = "{KEY_ENV}"
parallel = {parallel}
health_seconds = {health_seconds}
timeout_seconds = 120
"""


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so the fixtures' teardown runs and vLLM is stopped


@pytest.fixture(scope="session")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    if url := os.environ.get("LEEWAY_VLLM_URL"):  # one already running (tests/vllm/server.py)
        yield VllmServer.running(url, Path(os.environ["LEEWAY_VLLM_LOG"]))
        return
    python, model = os.environ.get("LEEWAY_VLLM_PYTHON"), os.environ.get("LEEWAY_VLLM_MODEL")
    if not python or not model:
        pytest.skip(
            "no vLLM to test against: `make test-vllm` installs vLLM in .venv-vllm, converts the "
            "model and runs these (it sets LEEWAY_VLLM_PYTHON and LEEWAY_VLLM_MODEL)"
        )
    log = Path(os.environ.get("LEEWAY_VLLM_LOG") or tmp_path_factory.mktemp("vllm") / "vllm.log")
    server = VllmServer(Path(python).absolute(), Path(model).absolute(), log, VLLM_SEQS)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        started = time.monotonic()
        server.start()
        print(f"\nvLLM ready on {server.url} in {time.monotonic() - started:.0f} s (log: {log})")
        yield server
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


def start_gateway(root: Path, vllm: VllmServer, **config: Any) -> LeewayServer:
    os.environ[KEY_ENV] = API_KEY
    vllm.ensure_running()
    return LeewayServer(root, gateway_config(vllm.url, **config)).start()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, vllm: VllmServer) -> Iterator[LeewayServer]:
    server = start_gateway(tmp_path_factory.mktemp("gateway"), vllm)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(gateway: LeewayServer) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0, timeout=600)


@pytest.fixture
def claude(gateway: LeewayServer) -> anthropic.Anthropic:
    base = gateway.base_url.removesuffix("/v1")
    return anthropic.Anthropic(base_url=base, api_key=gateway.key, max_retries=0, timeout=600)


def until(check: Callable[[], Any], seconds: float = 300, every: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every)
    raise AssertionError(f"not within {seconds:.0f} s")
