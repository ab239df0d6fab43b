"""Browser tests of the dashboard: a real headless Chromium (Debian's ``chromium`` package; `.ci/run`
installs it) driven by Playwright for Python, against ``leeway serve`` on the fake engine. Without
Chromium (or Playwright) they skip and say so; Playwright's own browsers are never downloaded."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer

SLOW = "slow-model"  # one sequence at a time, about 0.5 s an item: a batch's progress is visible

CONFIG = f"""
poll_seconds = 0.2

[[models]]
id = "{MODEL}"
fake_tokens = 6
fake_delay = 0.01
prices.standard = {{ input = 0.35, output = 1.4 }}
prices.flex = {{ input = 0.2, output = 0.8 }}

[[models]]
id = "{SLOW}"
windows = ["asap", "priority", "standard", "flex"]
parallel = 1
fake_tokens = 5
fake_delay = 0.1
prices.standard = {{ input = 1.0, output = 2.0 }}
"""


def chromium() -> str | None:
    found = os.environ.get("LEEWAY_CHROMIUM") or shutil.which("chromium")
    return found if found and Path(found).exists() else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped: Playwright's sync API keeps an event loop running in this thread while it is
    open, which every asyncio test after it would trip over (``Runner.run() cannot be called from
    a running event loop``); it is closed at the end of each browser test module."""
    binary = chromium()
    if binary is None:
        pytest.skip("no Chromium: install Debian's `chromium` package (.ci/run does) to run these")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev extra")
    with sync_api.sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start
        b = p.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


class Dash:
    """The server, its admin key and two tenants' keys."""

    def __init__(self, server: LeewayServer) -> None:
        self.server = server
        self.url = f"http://127.0.0.1:{server.port}"
        self.admin = server.key
        self.alpha = server.new_key("alpha")
        self.beta = server.new_key("beta")


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    s = LeewayServer(Path(tmp_path_factory.mktemp("dash")), CONFIG, ("--engine", "fake"))
    s.start()
    try:
        yield Dash(s)
    finally:
        s.stop()
