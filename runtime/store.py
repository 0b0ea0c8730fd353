"""Durable, append-only storage of ledger entries and checkpoints: SQLite or PostgreSQL.

Only INSERT and SELECT statements exist here: rows are never updated or deleted. A write happens
inside `store.transaction()`, which is exclusive across processes (SQLite BEGIN IMMEDIATE,
PostgreSQL pg_advisory_xact_lock) so a writer reads the rows appended by others, catches up,
stages and appends without racing them; the transaction is durable when the `with` exits.

Each thread gets its own connection (threading.local): one writer thread may hold a transaction
while other threads read or ping.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from typing import Iterator

PAGE = 50_000  # rows per SELECT page when streaming a ledger
LOCK_ID = 0x4C77615300000001  # pg advisory lock id of the ledger writers: "LwaS" + 1
ROW = tuple  # (seq, key, entry bytes)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries (ledger TEXT NOT NULL, seq BIGINT NOT NULL, "
    "key TEXT NOT NULL, entry {blob} NOT NULL, PRIMARY KEY (ledger, seq), UNIQUE (ledger, key))",
    "CREATE TABLE IF NOT EXISTS checkpoints (ledger TEXT NOT NULL, tree_size BIGINT NOT NULL, "
    "note TEXT NOT NULL, PRIMARY KEY (ledger, tree_size))",
)


def open_store(url: str, create: bool = True):
    """A plain path or sqlite:///path -> SqliteStore; postgresql://... -> PostgresStore.

    create=False refuses to create a missing SQLite file (an auditor must not conjure an
    empty, "valid" ledger out of a typo)."""
    url = str(url)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    if url.startswith("sqlite://"):
        url = url[len("sqlite://"):]  # sqlite:///abs/path -> /abs/path
        if url.startswith("//"):
            url = url[1:]  # sqlite:////abs/path (SQLAlchemy spelling) -> /abs/path
    elif "://" in url:
        raise ValueError(f"unsupported store URL {url!r}")
    if not create and not os.path.exists(url):
        raise FileNotFoundError(f"no such ledger database: {url}")
    return SqliteStore(url)


CHUNK = 500  # rows per INSERT: 2000 parameters, under SQLite's limit (32766 since 3.32)


class _Tx:
    """The writer's view inside one transaction (same SQL for both backends, `?` or `%s`)."""

    def __init__(self, cur, mark: str):
        self.cur, self.mark = cur, mark

    def read(self, ledger: str, after_seq: int = -1) -> list[ROW]:
        m = self.mark
        self.cur.execute(f"SELECT seq, key, entry FROM entries WHERE ledger = {m} AND seq > {m} "
                         "ORDER BY seq", (ledger, after_seq))
        return [(s, k, bytes(e)) for s, k, e in self.cur.fetchall()]

    def append_many(self, ledger: str, rows) -> None:
        """Multi-row INSERTs of up to CHUNK rows: one statement is one round trip (PostgreSQL)
        and one release of the GIL (sqlite3 releases it for every row of an executemany, and a
        busy event loop then holds it for up to a switch interval each time)."""
        m = self.mark
        one = f"({m}, {m}, {m}, {m})"
        rows = list(rows)
        for i in range(0, len(rows), CHUNK):
            part = rows[i:i + CHUNK]
            args = [x for s, k, e in part for x in (ledger, s, k, e)]
            self.cur.execute(f"INSERT INTO entries (ledger, seq, key, entry) VALUES {', '.join([one] * len(part))}",
                             args)

    def add_checkpoint(self, ledger: str, size: int, note: str) -> None:
        m = self.mark
        self.cur.execute(f"INSERT INTO checkpoints (ledger, tree_size, note) VALUES ({m}, {m}, {m})",
                         (ledger, size, note))


class _Conns:
    """One connection per thread, all closed together by close()."""

    def __init__(self, connect):
        self.connect = connect
        self.local = threading.local()
        self.all: list = []
        self.lock = threading.Lock()
        self.closed = False

    def get(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            if self.closed:
                raise RuntimeError("store is closed")
            c = self.local.conn = self.connect()
            with self.lock:
                self.all.append(c)
        return c

    def close(self) -> None:
        self.closed = True
        with self.lock:
            conns, self.all = self.all, []
        for c in conns:
            try:
                c.close()
            except Exception:
                pass


def _read_pages(query, mark: str, ledger: str, after_seq: int) -> Iterator[ROW]:
    sql = (f"SELECT seq, key, entry FROM entries WHERE ledger = {mark} AND seq > {mark} "
           f"ORDER BY seq LIMIT {PAGE}")
    while True:
        rows = query(sql, (ledger, after_seq))
        yield from rows
        if len(rows) < PAGE:
            return
        after_seq = rows[-1][0]



def _checkpoints(query, mark: str, ledger: str) -> list[tuple[int, str]]:
    return [(s, n) for s, n in query(
        f"SELECT tree_size, note FROM checkpoints WHERE ledger = {mark} ORDER BY tree_size", (ledger,))]


_LEDGERS = "SELECT ledger FROM entries UNION SELECT ledger FROM checkpoints ORDER BY 1"


class _Reads:
    """What both stores read the same way (`MARK` is the driver's parameter marker)."""

    MARK = "?"

    def read(self, ledger: str, after_seq: int = -1) -> Iterator[ROW]:
        """Rows (seq, key, entry) with seq > after_seq, in seq order, fetched page by page."""
        return _read_pages(self._query, self.MARK, ledger, after_seq)

    def checkpoints(self, ledger: str) -> list[tuple[int, str]]:
        return _checkpoints(self._query, self.MARK, ledger)

    def ledgers(self) -> list[str]:
        return [r[0] for r in self._query(_LEDGERS)]

    def ping(self) -> bool:
        return self._query("SELECT 1")[0][0] == 1

    def close(self) -> None:
        self._conns.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SqliteStore(_Reads):
    """SQLite in WAL mode with synchronous=FULL: a commit is on disk when transaction() exits."""

    def __init__(self, path: str, busy_timeout_ms: int = 30_000):
        self.path, self.busy_timeout_ms = path, busy_timeout_ms
        self._conns = _Conns(self._connect)
        c = self._conns.get()
        c.execute("PRAGMA journal_mode=WAL")
        with self.transaction() as tx:
            for stmt in SCHEMA:
                tx.cur.execute(stmt.format(blob="BLOB"))

    def _connect(self):
        c = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                            timeout=self.busy_timeout_ms / 1000)
        c.execute("PRAGMA synchronous=FULL")
        return c

    def _query(self, sql, args=()):
        return self._conns.get().execute(sql, args).fetchall()

    @contextmanager
    def transaction(self):
        c = self._conns.get()
        c.execute("BEGIN IMMEDIATE")
        try:
            yield _Tx(c.cursor(), "?")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")



class PostgresStore(_Reads):
    """PostgreSQL through psycopg 3; writers serialise on one transaction-scoped advisory lock."""

    MARK = "%s"

    def __init__(self, url: str):
        self.url = url
        self._conns = _Conns(self._connect)
        with self.transaction() as tx:  # the lock also serialises concurrent CREATE TABLEs
            for stmt in SCHEMA:
                tx.cur.execute(stmt.format(blob="BYTEA"))

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def _query(self, sql, args=()):
        with self._conns.get().cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    @contextmanager
    def transaction(self):
        c = self._conns.get()
        with c.transaction():  # commits on exit; rolls back and re-raises on an exception
            with c.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
                yield _Tx(cur, "%s")

