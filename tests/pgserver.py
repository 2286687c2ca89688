"""A throwaway PostgreSQL server for the tests: initdb into a temp folder, started once per session.

The server is Debian's PostgreSQL (``apt-get install postgresql``; ``.ci/run``
installs it where it is missing). It listens on a unix socket in its own temp
folder only (no TCP port to collide with), trusts local logins, and is stopped
and deleted at the end of the session. As root, initdb and the server run as
the ``postgres`` user the package creates (PostgreSQL refuses to run as root).

Fixtures: ``pg_server`` (session) and ``pg_url`` (a fresh, empty database per
test, dropped after it). Tests that need PostgreSQL skip, saying why, only when
no PostgreSQL binaries are installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PORT = 5432  # inside a private socket folder: never collides with another server


@dataclass
class PgServer:
    """A running server: its data and socket folder, and how to reach it."""

    root: Path
    bindir: Path

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={PORT}"


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def start_server(root: Path, *, fsync: bool = False, max_connections: int = 100) -> PgServer:
    """initdb into ``root`` and start a server on a unix socket there.

    Raises:
        RuntimeError: initdb or pg_ctl failed (with their output).
    """
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    server = PgServer(root, bindir)
    server.socket_dir.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(server.socket_dir, "postgres")
        os.chmod(root, 0o755)
    data = root / "data"
    run = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    _check(_as_server_user([*run, "--no-sync"]))
    options = (
        f"-c listen_addresses='' -c unix_socket_directories='{server.socket_dir}' -p {PORT} "
        f"-c fsync={'on' if fsync else 'off'} -c max_connections={max_connections}"
    )
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log")]
    _check(_as_server_user([*start, "-w", "-t", "60", "start"]))
    return server


def stop_server(server: PgServer) -> None:
    """Stop the server at once and delete its folder."""
    pg_ctl = [str(server.bindir / "pg_ctl"), "-D", str(server.root / "data"), "-m", "immediate"]
    subprocess.run(_as_server_user([*pg_ctl, "stop"]), capture_output=True, check=False)
    shutil.rmtree(server.root, ignore_errors=True)


def _check(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the whole session (skips only when none is installed)."""
    if find_bindir() is None:
        pytest.skip(
            "PostgreSQL is not installed and could not be: apt-get install -y postgresql "
            "(.ci/run does it)"
        )
    pytest.importorskip("psycopg", reason="psycopg is missing: pip install -e '.[dev]'")
    root = Path(tempfile.mkdtemp(prefix="vouch-pg-"))
    server = start_server(root)
    try:
        yield server
    finally:
        stop_server(server)


def create_database(server: PgServer) -> str:
    """A new empty database on ``server``; its URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return server.url(name)


def drop_database(server: PgServer, url: str) -> None:
    import psycopg

    name = url.split("/")[3].split("?", maxsplit=1)[0]
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    url = create_database(pg_server)
    try:
        yield url
    finally:
        drop_database(pg_server, url)
