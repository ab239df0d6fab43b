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
