"""The SQL engines behind Store: SQLite (one machine, the default) and PostgreSQL (several instances).

Store and migrations speak one portable dialect: `?` placeholders, INTEGER / TEXT / REAL / BLOB columns,
`INTEGER PRIMARY KEY` ids, `x''` for an empty blob, `INSERT ... ON CONFLICT`, `RETURNING`. SQLite runs it
as written; PostgreSQL gets it translated here (placeholders, the empty blob, and in migrations the column
types: REAL is a 4-byte float in PostgreSQL, so it becomes DOUBLE PRECISION). A column that holds sealed
bytes is declared BLOB (or, if it held text before, passed to `make_blob` in the migration that seals it).

PostgreSQL is reached with psycopg 3: its synchronous API fits Store, whose calls are short and run on the
event loop's thread (asyncpg would mean an async Store and an async caller at every one of its uses).
Because they run there, none may hang: a statement has STATEMENT_DEADLINE_S, and connecting again after
the connection was lost happens on a thread of its own (a stalled server, e.g. a stopped process or a
frozen machine, keeps its socket open and answers nothing: without a bound, pages, API and live checks
would all wait for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
JOURNAL_SIZE_LIMIT = 1024 * 1024  # the WAL is cut back to this after a checkpoint resets it
BUSY_TIMEOUT_S = 10
CHECKPOINT_WAIT_MS = 500
SCHEMA_LOCK = 0x7265616C6E616D65  # "realname": the advisory lock instances take while migrating
CONNECT_TIMEOUT_S = 5  # for one attempt to connect (on its own thread, see PostgresDatabase._reconnect)
RECONNECT_FIRST_S, RECONNECT_MAX_S = 0.5, 8.0  # back-off between reconnection attempts, doubling
RECONNECT_WAIT_S = 0.25  # how long a statement waits for a connection being made before it answers 503
# A statement unanswered by then has its connection cut (503): a stalled server holds the event loop no
# longer. Below the live checks' no-frames timeout (4 s), so that a stall does not end them.
STATEMENT_DEADLINE_S = 2.0
STORAGE_FULL_RETRY_S = 10.0  # a full disk is freed by a person, not in a moment


class DatabaseUnavailable(Exception):
    """The database cannot be reached now (it restarted, or is down); ask again after `retry_after_s`."""

    status = 503  # the answer to a request that met it (server/errors.py has its code)

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"the database cannot be reached; retry in {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class StorageFull(DatabaseUnavailable):
    """The database's disk is full: nothing was written (the statement or transaction was undone). Writes
    work again once the operator frees space, so it is waited for like a database that is down."""

    status = 507

    def __init__(self, retry_after_s: float = STORAGE_FULL_RETRY_S) -> None:
        Exception.__init__(self, "the database's disk is full")
        self.retry_after_s = retry_after_s


def is_postgres_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


class Database:
    """One connection. `shared`: other instances may use the same database at the same time."""

    shared = False
    integrity_error: type[Exception] = sqlite3.IntegrityError
    name = ""  # for messages: where the data is
    skip_locked = ""  # after a SELECT that claims rows: how to pass over rows another connection holds

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        raise NotImplementedError

    def begin(self) -> None:
        raise NotImplementedError

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def schema(self, statement: str) -> str:
        """A migration statement in this engine's column types."""
        return statement

    def make_blob(self, table: str, column: str) -> None:
        """A TEXT column that now holds sealed bytes (SQLite stores either in any column)."""

    def add_vector_column(self, table: str, column: str, dimensions: int) -> None:
        """A column of vectors with a cosine index, where the engine has one (PostgreSQL with pgvector)."""

    def build_vector_index(self, table: str, column: str, memory_mb: int = 0) -> None:
        """That column's index built again from the rows in the table (nothing to do without one)."""

    @contextlib.contextmanager
    def schema_lock(self) -> Iterator[None]:
        yield

    def erase_traces(self) -> bool:
        """Make erased rows unrecoverable from the engine's files; False if it must be retried later."""
        return True

    def clock(self) -> float:
        """The time by the database's clock (Unix seconds): for SQLite, on this machine, this machine's."""
        return time.time()

    def close(self) -> None:
        raise NotImplementedError


class SQLiteDatabase(Database):
    """WAL with synchronous=NORMAL: a commit is a write to the log without an fsync."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # SQLite gives -wal/-shm the same mode
        self.name = str(path)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA secure_delete=ON")  # erased rows are overwritten with zeros, not just unlinked
        self._db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, tuple(params))
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode == sqlite3.SQLITE_FULL:  # type: ignore[attr-defined]
                log.error("%s: the disk is full; nothing was written", self.name)
                raise StorageFull() from None
            raise

    def begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")  # the write lock now, so a transaction never fails to upgrade

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    def erase_traces(self) -> bool:
        """Copy the log into the database and truncate it: what was just erased must not survive in the
        -wal file (secure_delete already zeroed it in the pages)."""
        self._db.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")  # a reader must not stall the event loop for long
        try:
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        return not busy

    def close(self) -> None:
        self._db.close()


async def when_available(call: Callable[[], Awaitable[Any]], wait_s: float) -> Any:
    """`await call()`, made again while the database is unavailable, for up to `wait_s` in all."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return await call()
        except DatabaseUnavailable as down:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(down.retry_after_s)


class PostgresDatabase(Database):
    """Autocommit, with explicit BEGIN/COMMIT for Store's transactions, rows as dicts.

    Erased rows: what identifies a customer and all evidence is sealed with the evidence key before it
    reaches PostgreSQL, so what a dead tuple or an old WAL segment keeps until (auto)vacuum is ciphertext.
    """

    shared = True
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, deadline_s: float | None = STATEMENT_DEADLINE_S) -> None:
        import psycopg

        self._psycopg = psycopg
        self.integrity_error = psycopg.IntegrityError
        self.name = _without_password(url)
        self._url = url
        self._backoff, self._retry_at = RECONNECT_FIRST_S, 0.0
        self._connecting: Future | None = None
        self._deadline_s = deadline_s
        self._watchdog = Watchdog()
        self._one_at_a_time = threading.Lock()  # the watchdog watches one statement; one thread reconnects
        self._db = self._connect()

    def _connect(self) -> Any:
        from psycopg.rows import dict_row

        return self._psycopg.connect(self._url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        with self._one_at_a_time:
            return self._execute(sql, params)

    def _execute(self, sql: str, params: Iterable[Any]) -> Any:
        if self._db.broken or self._db.closed:
            self._reconnect()
        try:
            with self._watchdog.bound(self._db.fileno(), self._deadline_s):
                return self._db.execute(_translate(sql), tuple(params))
        except self._psycopg.errors.DiskFull:
            log.error("PostgreSQL's disk is full; nothing was written")
            raise StorageFull() from None
        except self._psycopg.OperationalError as error:
            if self._db.broken:  # the connection went, not the statement: the server restarted, stopped or stalled
                if self._watchdog.cut:
                    log.warning("PostgreSQL did not answer a statement within %.1f s; its connection was cut", self._deadline_s)
                raise DatabaseUnavailable(self._backoff) from error
            raise

    @contextlib.contextmanager
    def without_deadline(self) -> Iterator[None]:
        """For statements that may rightly take long (migrating, waiting for another instance's migration,
        building an index): off the serving path, at start-up or in the CLI."""
        kept, self._deadline_s = self._deadline_s, None
        try:
            yield
        finally:
            self._deadline_s = kept

    def _reconnect(self) -> None:
        """With back-off, on a thread of its own: while PostgreSQL is down or stalled, requests are answered
        at once (503) rather than each waiting for a connection attempt (up to CONNECT_TIMEOUT_S)."""
        now = time.monotonic()
        if now < self._retry_at:
            raise DatabaseUnavailable(self._retry_at - now)
        started = self._connecting is None
        if started:
            log.warning("the connection to PostgreSQL was lost; reconnecting")
            self._db.close()
            self._connecting = Future()
            threading.Thread(target=self._connect_into, args=(self._connecting,), name="postgres-connect", daemon=True).start()
        connecting = self._connecting
        try:  # only the call that started the attempt waits (briefly): a healthy server answers at once
            connection = connecting.result(timeout=RECONNECT_WAIT_S if started else 0)
        except TimeoutError:
            raise DatabaseUnavailable(RECONNECT_FIRST_S) from None  # still connecting
        except Exception as error:
            self._connecting = None
            if not isinstance(error, self._psycopg.OperationalError):
                raise
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(RECONNECT_MAX_S, self._backoff * 2)
            raise DatabaseUnavailable(self._retry_at - time.monotonic()) from error
        self._connecting = None
        self._db = connection
        self._backoff, self._retry_at = RECONNECT_FIRST_S, 0.0
        log.warning("reconnected to PostgreSQL")

    def _connect_into(self, future: Future) -> None:
        try:
            future.set_result(self._connect())
        except BaseException as error:
            future.set_exception(error)

    def begin(self) -> None:
        self.execute("BEGIN")

    def clock(self) -> float:
        return float(self.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp()) AS now").fetchone()["now"])

    @property
    def in_transaction(self) -> bool:
        return self._db.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE

    def schema(self, statement: str) -> str:
        return _postgres_types(statement)

    def make_blob(self, table: str, column: str) -> None:
        self.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE BYTEA USING convert_to({column}, 'UTF8')")

    def add_vector_column(self, table: str, column: str, dimensions: int) -> None:
        try:
            self.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except self._psycopg.Error as error:
            from ..config import ConfigError

            raise ConfigError(
                f"PostgreSQL needs the pgvector extension for the face gallery ({str(error).strip()}): install it on the "
                "database server (docs/deployment.md), or have a superuser run CREATE EXTENSION vector in this database"
            ) from None
        self.execute(f"ALTER TABLE {table} ADD COLUMN {column} vector({dimensions})")
        self.build_vector_index(table, column)

    def build_vector_index(self, table: str, column: str, memory_mb: int = 0) -> None:
        """The column's HNSW index over cosine distance, (re)built from the rows now in the table; m and
        ef_construction are pgvector's defaults (docs/benchmarks.md). `memory_mb`: maintenance_work_mem for
        the build, when more than the server's: the graph is built in memory when it fits, far faster."""
        with self.without_deadline():
            self._build_vector_index(table, column, memory_mb)

    def _build_vector_index(self, table: str, column: str, memory_mb: int) -> None:
        self.execute(f"DROP INDEX IF EXISTS {table}_{column}")
        current = self.execute("SELECT setting::bigint AS kb FROM pg_settings WHERE name = 'maintenance_work_mem'").fetchone()
        raise_memory = memory_mb * 1024 > int(current["kb"])
        if raise_memory:
            self.execute(f"SET maintenance_work_mem = '{int(memory_mb)}MB'")
        try:
            self.execute(f"CREATE INDEX {table}_{column} ON {table} USING hnsw ({column} vector_cosine_ops)")
        finally:
            if raise_memory:
                self.execute("RESET maintenance_work_mem")
        self.execute(f"ANALYZE {table}")  # as autovacuum would after a bulk load: the planner then uses the index

    @contextlib.contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Instances starting together migrate one after the other (the wait, and a migration, may be long)."""
        with self.without_deadline():
            self.execute("SELECT pg_advisory_lock(?)", (SCHEMA_LOCK,))
            try:
                yield
            finally:
                self.execute("SELECT pg_advisory_unlock(?)", (SCHEMA_LOCK,))

    def close(self) -> None:
        self._watchdog.stop()
        self._db.close()
        if self._connecting is not None:  # a connection still being made is closed when it is made
            self._connecting.add_done_callback(lambda made: made.exception() is None and made.result().close())


class Watchdog:
    """Cuts the connection of a statement that runs past its deadline: its socket is shut down, so the
    wait for the answer ends at once with the connection broken. One thread, sleeping while nothing is due."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: tuple[float, int] | None = None  # (monotonic deadline, socket) of the statement under way
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.cut = False  # the last statement's connection was cut

    @contextlib.contextmanager
    def bound(self, fileno: int, deadline_s: float | None) -> Iterator[None]:
        if deadline_s is None:
            yield
            return
        with self._changed:
            self.cut = False
            self._due = (time.monotonic() + deadline_s, fileno)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="postgres-watchdog", daemon=True)
                self._thread.start()
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._due = None

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while not self._stopped:
                if self._due is None:
                    self._changed.wait()
                    continue
                at, fileno = self._due
                left = at - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                self._due = None
                self.cut = True
                _shut(fileno)


def _shut(fileno: int) -> None:
    """Both directions of the socket shut (the descriptor stays its owner's to close)."""
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fileno)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


_LITERAL = re.compile(r"('(?:[^']|'')*')")
_EMPTY_BLOB = re.compile(r"\bx''")


@functools.lru_cache(maxsize=512)
def _translate(sql: str) -> str:
    """`?` placeholders to psycopg's `%s` (a literal `%` doubled), `x''` to an empty bytea; text inside
    quotes stays as it is."""
    parts = _LITERAL.split(_EMPTY_BLOB.sub("''::bytea", sql))
    for index in range(0, len(parts), 2):  # the even parts are outside quotes
        parts[index] = parts[index].replace("%", "%%").replace("?", "%s")
    return "".join(parts)


_TYPES = [
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
]


def _postgres_types(statement: str) -> str:
    parts = _LITERAL.split(statement)
    for index in range(0, len(parts), 2):
        for pattern, replacement in _TYPES:
            parts[index] = pattern.sub(replacement, parts[index])
    return "".join(parts)


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def open_database(location: str | Path) -> Database:
    """PostgreSQL for a postgresql:// URL, else the SQLite file at `location`."""
    if is_postgres_url(location):
        return PostgresDatabase(str(location))
    return SQLiteDatabase(Path(location))
