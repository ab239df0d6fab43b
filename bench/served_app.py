"""The app for servers started from an import path (bench/servers.py): built from LEEWAY_CONFIG and
LEEWAY_DATA_DIR, with no server-side guards but the server's own."""

from __future__ import annotations

import os
from pathlib import Path

from leeway import settings as config
from leeway.app import build_app

app = build_app(
    config.load(Path(os.environ["LEEWAY_CONFIG"]), data_dir=Path(os.environ["LEEWAY_DATA_DIR"]))
)
