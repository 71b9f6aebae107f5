"""A private PostgreSQL server for the tests: its own data folder, port and socket, removed afterwards.

``Postgres.create()`` runs Debian's binaries (``/usr/lib/postgresql/<version>/bin``): ``initdb``
refuses to run as root, so as root the folder is handed to the ``postgres`` user and the
commands run through ``su postgres`` (the notes on PostgreSQL in the test set-up). Local socket connections are
trusted (the tests' own set-up, as the superuser ``postgres``); TCP connections on 127.0.0.1
need a password (scram-sha-256), so a wrong password is refused as on a real server.

``PostgresUnavailable`` is raised only when PostgreSQL is not installed; any other failure is an
error with the server's log, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN_ROOT = Path("/usr/lib/postgresql")
USER = "gateway"
PASSWORD = "gw-secret-7"  # noqa: S105 - a throw-away server's test password


class PostgresUnavailable(Exception):
    pass


def _bin_dir() -> Path:
    versions = sorted((p for p in BIN_ROOT.glob("*/bin") if (p / "initdb").exists()),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not versions:
        raise PostgresUnavailable("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; "
                                  "apt-get install postgresql, as .ci/run does)")
    return versions[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Postgres:
    folder: Path
    port: int
    bin: Path
    databases: set[str] = field(default_factory=set)

    @classmethod
    def create(cls) -> Postgres:
        bin_dir = _bin_dir()
        folder = Path(tempfile.mkdtemp(prefix="gw-pg-", dir="/tmp"))
        folder.chmod(0o755)
        pg = cls(folder, free_port(), bin_dir)
        try:
            pg._as_owner(["chown", "-R", "postgres:postgres", str(folder)], root_only=True)
            pg._run(str(bin_dir / "initdb"), "-D", str(pg.data), "-U", "postgres", "--auth-local=trust",
                    "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
            pg.start()
            pg.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
        except BaseException:
            pg.cleanup()
            raise
        return pg

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def _as_owner(self, argv: list[str], root_only: bool = False) -> None:
        if os.geteuid() != 0:
            if root_only:
                return
            subprocess.run(argv, check=True, capture_output=True, timeout=120)
            return
        if root_only:
            subprocess.run(argv, check=True, capture_output=True, timeout=60)
            return
        command = " ".join(shlex.quote(a) for a in argv)
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], check=True, capture_output=True,
                       timeout=120)

    def _run(self, *argv: str) -> None:
        try:
            self._as_owner(list(argv))
        except subprocess.CalledProcessError as exc:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {exc.stderr.decode(errors='replace')}\n{log}") from None

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=60")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w",
                  "-t", "60", "start")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def cleanup(self) -> None:
        if self.data.exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- using it -------------------------------------------------------------------------------

    def connect(self, database: str = "postgres") -> Any:
        """A psycopg connection as the superuser over the private socket (autocommit)."""
        import psycopg

        return psycopg.connect(host=str(self.folder), port=self.port, user="postgres", dbname=database,
                               autocommit=True)

    def execute(self, statement: str, database: str = "postgres") -> None:
        with self.connect(database) as conn:
            conn.execute(statement)

    def url(self, database: str, *, user: str = USER, password: str = PASSWORD, port: int | None = None) -> str:
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{port or self.port}/{database}"

    def fresh_database(self, name: str) -> str:
        """A new, empty database owned by the test user (an old one of that name is dropped first)."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.execute(f'CREATE DATABASE "{name}" OWNER {USER}')
        self.databases.add(name)
        return name
