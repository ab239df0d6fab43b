from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import LeewayServer

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
ASAP_FLEX = "smol-asap-flex"
ALIAS = "zai-org/GLM-5.1-FP8"  # the model the reference's batch script names

# The default model as `make serve` runs it, plus a second model (the same GGUF, smaller) that
# supports only asap and flex, to exercise the window fallback rules.
CONFIG = f"""
max_body_bytes = 1048576

[[models]]
id = "{MODEL}"
aliases = ["{ALIAS}"]

[[models]]
id = "{ASAP_FLEX}"
windows = ["asap", "flex"]
parallel = 2
context = 512
"""


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeewayServer]:
    s = LeewayServer(Path(tmp_path_factory.mktemp("leeway")), CONFIG).start()
    try:
        yield s
    finally:
        s.stop()


FAKE_CONFIG = f"""
max_batch_bytes = 2000000
max_batch_requests = 3000
poll_seconds = 0.2
[tenant_limits.small]
max_queued = 5

[[models]]
id = "{MODEL}"
aliases = ["{ALIAS}"]
fake_tokens = 6
fake_delay = 0.02
"""


# The fake engine (instant, deterministic) behind the real server: for API behaviour, not tokens.
@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeewayServer]:
    s = LeewayServer(Path(tmp_path_factory.mktemp("fake")), FAKE_CONFIG, ("--engine", "fake"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


SLOW = "slow-model"  # one sequence at a time, slowly: what comes after it waits, queued

# The fake engine with what the SDKs' extras need: prices to show, a tenant with limits (its
# x-ratelimit-* headers), a slow model, webhooks to loopback receivers.
FIDELITY_CONFIG = f"""
max_batch_requests = 3000
poll_seconds = 0.2
[tenant_limits.limited]
requests_per_second = 50
max_queued = 4
[tenant_limits.small]
max_queued = 5
[webhooks]
allow = ["127.0.0.0/8"]
timeout_seconds = 1
poll_seconds = 0.05

[[models]]
id = "{MODEL}"
aliases = ["{ALIAS}"]
fake_tokens = 6
fake_delay = 0.02
prices.standard = {{ input = 0.35, output = 1.4 }}
prices.flex = {{ input = 0.2, output = 0.8 }}

[[models]]
id = "{SLOW}"
windows = ["asap", "priority", "standard", "flex"]
parallel = 1
fake_tokens = 8
fake_delay = 0.15
"""


@pytest.fixture(scope="module")
def fid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeewayServer]:
    s = LeewayServer(Path(tmp_path_factory.mktemp("fid")), FIDELITY_CONFIG, ("--engine", "fake"))
    s.start()
    try:
        yield s
    finally:
        s.stop()
