"""The reference quickstart script (tests/e2e/seed_scripts/quickstart.py, verbatim from
shared/seeds/001) runs to completion with only its base URL and key changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer

SCRIPT = Path(__file__).parent / "seed_scripts" / "quickstart.py"


def test_quickstart_script_runs_unchanged(server: LeewayServer, tmp_path: Path):
    source = SCRIPT.read_text()
    assert source.count("https://api.sailresearch.com/v1") == 1 and "YOUR_KEY_HERE" in source
    script = tmp_path / "quickstart.py"
    script.write_text(
        source.replace("https://api.sailresearch.com/v1", server.base_url).replace(
            "YOUR_KEY_HERE", server.key
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            "--model",
            MODEL,
            "--num-requests",
            "5",
            "--max-output-tokens",
            "32",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert MODEL in out  # the models list it prints
    assert "Created 5 response IDs" in out and "5/5 complete" in out
    assert out.count(" completed with output:") == 5
