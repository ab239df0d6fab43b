"""The reference fan-out script (the second script of shared/seeds/000, in
tests/e2e/seed_scripts/fanout.py with its lost indentation restored and nothing else changed) runs
2,000 background requests at concurrency 200 against `leeway serve --engine fake`, with only its base
URL and key changed: all complete, no errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.server import LeewayServer

SCRIPT = Path(__file__).parent / "seed_scripts" / "fanout.py"


def test_fanout_script_with_2000_requests(tmp_path: Path):
    source = SCRIPT.read_text()
    assert source.count("https://api.sailresearch.com/v1") == 1 and "YOUR_KEY_HERE" in source
    server = LeewayServer(tmp_path / "server", args=("--engine", "fake")).start()
    try:
        script = tmp_path / "fanout.py"
        script.write_text(
            source.replace("https://api.sailresearch.com/v1", server.base_url).replace(
                "YOUR_KEY_HERE", server.key
            )
        )
        run = subprocess.run(
            [
                sys.executable,
                str(script),
                "--num-requests",
                "2000",
                "--max-output-tokens",
                "16",
                "--model",
                "HuggingFaceTB/SmolLM2-135M-Instruct",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Created 2000 response IDs" in run.stdout
    assert run.stdout.count(" completed with output:\nfake fake1") == 2000
    assert "Timed out" not in run.stdout and "Error" not in run.stderr
