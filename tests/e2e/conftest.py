from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import LeewayServer

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
ASAP_FLEX = "smol-asap-flex"

# The default model as `make serve` runs it, plus a second model (the same GGUF, smaller) that
# supports only asap and flex, to exercise the window fallback rules.
CONFIG = f"""
max_body_bytes = 1048576

[[models]]
id = "{MODEL}"

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
