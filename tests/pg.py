"""A throwaway PostgreSQL server for tests and benches: initdb in a temp dir, listening on loopback
only (a free port, its socket in the same dir), stopped and removed at the end.

    with PgServer.start() as pg:        # or PgServer.start() ... pg.stop()
        url = pg.create_database()      # postgresql://leeway@127.0.0.1:PORT/db_N, a fresh database

Finds the binaries under ``/usr/lib/postgresql/*/bin`` or on PATH (``PgServer.find()`` is None when
there are none: tests skip). PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` system user (or ``nobody``) in a directory that user owns.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

USER = "leeway"  # the database superuser initdb makes (trust auth, loopback only)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self, bin_dir: Path, root: Path, port: int, run_as: str | None) -> None:
        self.bin_dir, self.root, self.port, self._run_as = bin_dir, root, port, run_as
        self._numbers = itertools.count(1)

    @staticmethod
    def find() -> Path | None:
        """The directory holding ``initdb`` and ``pg_ctl`` (the newest installed), or None."""
        found = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/initdb"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        if found:
            return found[-1].parent
        on_path = shutil.which("initdb")
        return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None

    @classmethod
    def start(cls, bin_dir: Path | None = None) -> PgServer:
        bin_dir = bin_dir or cls.find()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) found")
        root = Path(tempfile.mkdtemp(prefix="leeway-pg-"))
        run_as = None
        if os.geteuid() == 0:  # initdb and postgres refuse root
            run_as = next(u for u in ("postgres", "nobody") if _user_exists(u))
            entry = pwd.getpwnam(run_as)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server = cls(bin_dir, root, free_port(), run_as)
        try:
            server._run("initdb", "-D", str(root / "data"), "-U", USER, "--auth=trust", "-E",
                        "UTF8", "--no-sync")  # fmt: skip
            options = (
                f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} "
                "-c max_connections=200 -c shared_buffers=128MB"
            )
            server._run("pg_ctl", "-D", str(root / "data"), "-l", str(root / "log"), "-w",
                        "-t", "60", "-o", options, "start")  # fmt: skip
        except BaseException:
            server.stop()
            raise
        return server

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"db_{next(self._numbers)}"
        self._run("psql", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d",
                  "postgres", "-c", f"CREATE DATABASE {name}")  # fmt: skip
        return self.url(name)

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if not (self.bin_dir / program).exists():  # psql may live elsewhere (PATH)
            command[0] = shutil.which(program) or command[0]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root, check=False)
        if done.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise subprocess.CalledProcessError(
                done.returncode, command, done.stdout, f"{done.stderr}\n{tail}"
            )


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
