"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, run as the `postgres` user
(initdb refuses root) in a temporary folder, reached over a unix socket only, one new database per test."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

BACKENDS = ["sqlite", "postgresql"]


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/<version>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


@dataclass
class Cluster:
    folder: Path
    socket_dir: Path
    bin: Path
    options: str = ""  # the server's, for a restart

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def admin(self, sql: str) -> None:
        self.admin_on("postgres", sql)

    def admin_on(self, database: str, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    def new_database(self) -> str:
        name = "t_" + secrets.token_hex(6)
        self.admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Each database takes some megabytes of the temporary folder; FORCE ends what still uses it."""
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.folder, ignore_errors=True)

    def halt(self) -> None:
        """Down at once, as a crash (its data kept: `start` brings it back)."""
        _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")

    def start(self) -> None:
        _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-o", self.options, "-l", str(self.folder / "log"), "-w", "start")

    def processes(self) -> list[int]:
        """The postmaster and its children (the backends serving connections)."""
        postmaster = int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(Path(stat).parent.name))
        return [postmaster, *children]

    def pause(self) -> None:
        """SIGSTOP: the server hangs (connections stay open, nothing answers), as a stalled machine."""
        for pid in self.processes():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self.processes():
            os.kill(pid, signal.SIGCONT)


def _as_postgres(*command: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=60)


def start_cluster() -> Cluster:
    binaries = server_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's server binaries are not installed (scripts/test installs Debian's postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="realname-pg-"))
    socket_dir = folder / "socket"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (folder, socket_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
    data = folder / "data"
    _as_postgres(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
    options = f"-k {socket_dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c max_connections=200"
    cluster = Cluster(folder, socket_dir, binaries, options)
    cluster.start()
    try:
        # In the template every test database is copied from: the service needs pgvector (its face gallery).
        cluster.admin_on("template1", "CREATE EXTENSION IF NOT EXISTS vector")
    except Exception as error:
        cluster.stop()
        pytest.skip(f"pgvector is not installed ({error}); scripts/test builds it from ../shared/vendor")
    return cluster


def database_for(request: pytest.FixtureRequest) -> str:
    """For a fixture parametrized with BACKENDS: "" (SQLite in the data folder) or a new PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    cluster: Cluster = request.getfixturevalue("postgres")
    url = cluster.new_database()
    request.addfinalizer(lambda: cluster.drop_database(url))
    return url
