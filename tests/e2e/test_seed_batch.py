"""The reference's Batch API script (tests/e2e/seed_scripts/batch.py, from shared/seeds/000 with its
lost indentation restored) runs to completion against the real model with only its base URL and
key changed, and a smaller range: it is a test, not a load run. Its model id is an alias."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.server import LeewayServer

SCRIPT = Path(__file__).parent / "seed_scripts" / "batch.py"
N = 6


def test_batch_script_runs_unchanged(server: LeewayServer, tmp_path: Path):
    source = SCRIPT.read_text()
    assert source.count("https://api.sailresearch.com/v1") == 1 and "YOUR_KEY_HERE" in source
    assert source.count("for i in range(100)") == 1
    script = tmp_path / "batch.py"
    script.write_text(
        source.replace("https://api.sailresearch.com/v1", server.base_url)
        .replace("YOUR_KEY_HERE", server.key)
        .replace("for i in range(100)", f"for i in range({N})")
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=True
    ).stdout
    assert re.search(rf"Created batch batch_\w+ with {N} requests", out), out
    assert f"Progress: {N}/{N}" in out
    # each result is printed as "request-i: <its first 100 characters>..." (the text may hold
    # newlines, so only where each starts is certain)
    answers = re.findall(r"^request-(\d+): ", out, re.MULTILINE)
    assert sorted(int(i) for i in answers) == list(range(N)), out
    assert out.count("...") >= N
