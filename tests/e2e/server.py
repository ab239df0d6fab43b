"""Start ``leeway serve`` as a real process on a free loopback port, and stop it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

KEY = re.compile(r"\b(lw-[A-Za-z0-9_-]{20,})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LeewayServer:
    def __init__(
        self,
        data_dir: Path,
        config: str = "",
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir, self.port, self.args, self.env = data_dir, free_port(), args, env or {}
        self.config = data_dir / "leeway.toml"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(config)
        self.log = data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.key = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 180) -> LeewayServer:
        """Start it and wait until /health says its engines run (the OpenVINO engine loads in
        seconds on a quiet machine, a minute on a busy one)."""
        cmd = [
            sys.executable,
            "-m",
            "leeway",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--config",
            str(self.config),
            *self.args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"leeway serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"leeway serve never became healthy:\n{self.log.read_text()}")
        if not self.key and (found := KEY.search(self.log.read_text())):
            self.key = found.group(1)
        return self

    def new_key(self, tenant: str) -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "leeway",
                "keys",
                "create",
                "--tenant",
                tenant,
                "--data-dir",
                str(self.data_dir),
                "--config",
                str(self.config),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.strip()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def crash(self) -> None:
        """SIGKILL: no graceful hand-back of claims, exactly as a power cut would leave it."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
