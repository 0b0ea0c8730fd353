"""Durable, append-only storage of ledger entries and checkpoints: SQLite or PostgreSQL.

Only INSERT and SELECT statements touch entries and checkpoints: those rows are never updated or
deleted. The one exception is the derived `leaf` column (each entry's RFC 6962 leaf hash, so a
start loads hashes instead of re-hashing every entry): a migration fills it once for rows written
before it existed, and a start fills it for rows an older runtime appended since (`hashes`). The
snapshots table (PostgreSQL; lwas.runtime.snapshot) is a cache: its old rows are deleted. A write happens
inside `store.transaction()`, which is exclusive across processes (SQLite BEGIN IMMEDIATE,
PostgreSQL pg_advisory_xact_lock) so a writer reads the rows appended by others, catches up,
stages and appends without racing them; the transaction is durable when the `with` exits.

Each thread gets its own connection (threading.local): one writer thread may hold a transaction
while other threads read or ping.

An SQLite store is bound to the FILE it opened, not to its path: if the file is deleted or
replaced while serving, the open connections would go on writing into the unlinked (or the
old) inode, and every write acknowledged from then on would be gone at the next start. So the
store remembers the (st_dev, st_ino) of the file it opened; every write transaction checks,
before COMMIT, that the path still names that file (one stat per batch) and fails with
`StoreGone` otherwise (nothing is committed: the writer answers 503), and `ping` (what /readyz
asks) also says not ready when the file is gone or replaced, or when the file system has less
than `min_free_bytes` free (a full disk refuses every write anyway). A missing database file is
created when the store is opened, with a WARNING naming the path: a typo in `--db` must not
silently start an empty ledger.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
from contextlib import contextmanager
from hashlib import sha256
from operator import itemgetter
from typing import Iterator

log = logging.getLogger("lwas.store")

PAGE = 50_000  # rows per SELECT page when streaming a ledger
MIN_FREE_BYTES = 16 << 20  # below this much free space on its file system an SQLite store is not ready
LOCK_ID = 0x4C77615300000001  # pg advisory lock id of the ledger writers: "LwaS" + 1
ROW = tuple  # (seq, key, entry bytes)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries (ledger TEXT NOT NULL, seq BIGINT NOT NULL, "
    "key TEXT NOT NULL, entry {blob} NOT NULL, leaf {blob}, PRIMARY KEY (ledger, seq), UNIQUE (ledger, key))",
    "CREATE TABLE IF NOT EXISTS checkpoints (ledger TEXT NOT NULL, tree_size BIGINT NOT NULL, "
    "note TEXT NOT NULL, PRIMARY KEY (ledger, tree_size))",
    # the entry layout of each artifact that writes a ledger, and how far entries are
    # attributed to artifacts (lwas.runtime.schema; append-only too)
    "CREATE TABLE IF NOT EXISTS layouts (ledger TEXT NOT NULL, artifact TEXT NOT NULL, "
    "layout TEXT NOT NULL, PRIMARY KEY (ledger, artifact))",
    "CREATE TABLE IF NOT EXISTS layout_scans (ledger TEXT NOT NULL, upto BIGINT NOT NULL, "
    "seen TEXT NOT NULL, PRIMARY KEY (ledger, upto))",
)


# PostgreSQL keeps a service's state snapshots in the database every replica shares (SQLite:
# files beside the database, lwas.runtime.snapshot). A cache: old rows are pruned.
SNAPSHOTS = ("CREATE TABLE IF NOT EXISTS snapshots (service TEXT NOT NULL, taken BIGINT NOT NULL, "
             "data {blob} NOT NULL, PRIMARY KEY (service, taken))")


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


CHUNK = 400  # rows per INSERT: 2000 parameters, under SQLite's limit (32766 since 3.32)
_first, _second = itemgetter(0), itemgetter(1)


class MissingEntries(LookupError):
    """Rows that should be there are not (a gap in a ledger's seqs)."""


class StoreGone(OSError):
    """The database file the store opened is no longer at its path (deleted or replaced)."""


class _Tx:
    """The writer's view inside one transaction (same SQL for both backends, `?` or `%s`)."""

    def __init__(self, cur, mark: str):
        self.cur, self.mark = cur, mark

    def read(self, ledger: str, after_seq: int = -1) -> list[ROW]:
        m = self.mark
        self.cur.execute(f"SELECT seq, key, entry FROM entries WHERE ledger = {m} AND seq > {m} "
                         "ORDER BY seq", (ledger, after_seq))
        return [(s, k, bytes(e)) for s, k, e in self.cur.fetchall()]

    def rows(self, ledger: str, after_seq: int = -1) -> Iterator[tuple]:
        """(seq, key, entry, leaf hash or None) with seq > after_seq, in seq order, page by page."""
        m = self.mark
        sql = (f"SELECT seq, key, entry, leaf FROM entries WHERE ledger = {m} AND seq > {m} "
               f"ORDER BY seq LIMIT {PAGE}")
        while True:
            self.cur.execute(sql, (ledger, after_seq))
            rows = self.cur.fetchall()
            for s, k, e, h in rows:
                yield s, k, bytes(e), None if h is None else bytes(h)
            if len(rows) < PAGE:
                return
            after_seq = rows[-1][0]

    def hashes(self, ledger: str, upto: int) -> tuple[list[str], bytes]:
        """The keys and the concatenated leaf hashes of entries 0..upto-1, without reading the
        entries themselves. MissingEntries if one of them is not there. A row without a stored
        leaf hash (appended by an older runtime) gets it computed from its entry and stored."""
        m = self.mark
        sql = (f"SELECT key, leaf FROM entries WHERE ledger = {m} AND seq >= {m} AND seq < {m} "
               "ORDER BY seq")
        keys: list[str] = []
        parts: list[bytes] = []
        for lo in range(0, upto, PAGE):
            hi = min(upto, lo + PAGE)
            self.cur.execute(sql, (ledger, lo, hi))
            rows = self.cur.fetchall()
            if len(rows) != hi - lo:
                raise MissingEntries(f"ledger {ledger!r}: {hi - lo - len(rows)} of the entries "
                                     f"{lo}..{hi - 1} are missing")
            keys.extend(map(_first, rows))
            leaves = list(map(_second, rows))
            if None in leaves:
                leaves = self._fill(ledger, lo, leaves)
            parts.append(b"".join(leaves))
        return keys, b"".join(parts)

    def _fill(self, ledger: str, lo: int, leaves: list) -> list:
        m = self.mark
        hi = lo + len(leaves)
        self.cur.execute(f"SELECT seq, entry FROM entries WHERE ledger = {m} AND seq >= {m} AND seq < {m} "
                         "AND leaf IS NULL", (ledger, lo, hi))
        filled = [(sha256(b"\x00" + bytes(e)).digest(), ledger, s) for s, e in self.cur.fetchall()]
        for h, _, s in filled:
            leaves[s - lo] = h
        self.fill_leaves(filled)
        return leaves

    def fill_leaves(self, filled) -> None:
        """Store computed leaf hashes [(leaf, ledger, seq)] of rows that have none."""
        m = self.mark
        for i in range(0, len(filled), CHUNK):
            self.cur.executemany(f"UPDATE entries SET leaf = {m} WHERE ledger = {m} AND seq = {m} AND leaf IS NULL",
                                 filled[i:i + CHUNK])

    def append_many(self, ledger: str, rows) -> None:
        """Multi-row INSERTs of up to CHUNK rows: one statement is one round trip (PostgreSQL)
        and one release of the GIL (sqlite3 releases it for every row of an executemany, and a
        busy event loop then holds it for up to a switch interval each time). Rows are (seq,
        key, entry) or (seq, key, entry, leaf hash); the leaf hash is computed when absent."""
        m = self.mark
        one = f"({m}, {m}, {m}, {m}, {m})"
        rows = list(rows)
        for i in range(0, len(rows), CHUNK):
            part = rows[i:i + CHUNK]
            args = []
            for r in part:
                s, k, e = r[0], r[1], r[2]
                h = r[3] if len(r) > 3 and r[3] is not None else sha256(b"\x00" + e).digest()
                args += (ledger, s, k, e, h)
            self.cur.execute("INSERT INTO entries (ledger, seq, key, entry, leaf) VALUES "
                             f"{', '.join([one] * len(part))}", args)

    def add_checkpoint(self, ledger: str, size: int, note: str) -> None:
        m = self.mark
        self.cur.execute(f"INSERT INTO checkpoints (ledger, tree_size, note) VALUES ({m}, {m}, {m})",
                         (ledger, size, note))

    def last_checkpoint(self, ledger: str) -> tuple[int, str] | None:
        """(tree size, note) of the ledger's newest checkpoint, read inside this transaction."""
        m = self.mark
        self.cur.execute(f"SELECT tree_size, note FROM checkpoints WHERE ledger = {m} "
                         "ORDER BY tree_size DESC LIMIT 1", (ledger,))
        row = self.cur.fetchone()
        return (row[0], row[1]) if row else None

    def key_at(self, ledger: str, seq: int) -> str | None:
        """The key of entry `seq` (None if there is no such row)."""
        m = self.mark
        self.cur.execute(f"SELECT key FROM entries WHERE ledger = {m} AND seq = {m}", (ledger, seq))
        row = self.cur.fetchone()
        return row[0] if row else None


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


def _read_pages(query, mark: str, ledger: str, after_seq: int, before_seq: int | None = None) -> Iterator[ROW]:
    bound = f" AND seq < {int(before_seq)}" if before_seq is not None else ""
    sql = (f"SELECT seq, key, entry FROM entries WHERE ledger = {mark} AND seq > {mark}{bound} "
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


def _migrate(tx, has_leaf: bool, blob: str) -> None:
    """Databases made before the leaf column: add it and fill it (once, in the open transaction)."""
    if has_leaf:
        return
    tx.cur.execute(f"ALTER TABLE entries ADD COLUMN leaf {blob}")
    tx.cur.execute("SELECT DISTINCT ledger FROM entries")
    m = tx.mark
    for (ledger,) in tx.cur.fetchall():
        after = -1
        while True:
            tx.cur.execute(f"SELECT seq, entry FROM entries WHERE ledger = {m} AND seq > {m} ORDER BY seq "
                           f"LIMIT {PAGE}", (ledger, after))
            rows = tx.cur.fetchall()
            if not rows:
                break
            tx.fill_leaves([(sha256(b"\x00" + bytes(e)).digest(), ledger, s) for s, e in rows])
            after = rows[-1][0]


class _Reads:
    """What both stores read the same way (`MARK` is the driver's parameter marker)."""

    MARK = "?"

    def entry(self, ledger: str, seq: int) -> bytes | None:
        """The stored bytes of one entry (None if there is no such row)."""
        rows = self._query(f"SELECT entry FROM entries WHERE ledger = {self.MARK} AND seq = {self.MARK}",
                           (ledger, seq))
        return bytes(rows[0][0]) if rows else None

    def read(self, ledger: str, after_seq: int = -1, before_seq: int | None = None) -> Iterator[ROW]:
        """Rows (seq, key, entry) with after_seq < seq (< before_seq), in seq order, page by page."""
        return _read_pages(self._query, self.MARK, ledger, after_seq, before_seq)

    def checkpoints(self, ledger: str) -> list[tuple[int, str]]:
        return _checkpoints(self._query, self.MARK, ledger)

    def next_seq(self, ledger: str) -> int:
        """One past the highest stored seq (0 for an empty ledger): its size if nothing is missing."""
        rows = self._query(f"SELECT MAX(seq) FROM entries WHERE ledger = {self.MARK}", (ledger,))
        return 0 if rows[0][0] is None else rows[0][0] + 1

    def last_checkpoint(self, ledger: str) -> tuple[int, str] | None:
        """(tree size, note) of the ledger's newest checkpoint (one row, whatever the history)."""
        rows = self._query(f"SELECT tree_size, note FROM checkpoints WHERE ledger = {self.MARK} "
                           "ORDER BY tree_size DESC LIMIT 1", (ledger,))
        return (rows[0][0], rows[0][1]) if rows else None

    def ledgers(self) -> list[str]:
        return [r[0] for r in self._query(_LEDGERS)]

    def ping(self) -> bool:
        """The store answers a query (False, never an exception: /readyz asks this)."""
        try:
            return self._query("SELECT 1")[0][0] == 1
        except Exception:  # noqa: BLE001 - any driver error means not ready
            return False

    def problem(self) -> str | None:
        """Why the store cannot take writes now, known without a query (None: no such check)."""
        return None

    def close(self) -> None:
        self._conns.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _file_id(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file at path, None if there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _in_memory(path: str) -> bool:
    return path in ("", ":memory:") or path.startswith("file:")


class SqliteStore(_Reads):
    """SQLite in WAL mode with synchronous=FULL: a commit is on disk when transaction() exits,
    and only while the path still names the file the store opened (see the module docstring)."""

    def __init__(self, path: str, busy_timeout_ms: int = 30_000, min_free_bytes: int = MIN_FREE_BYTES):
        self.path, self.busy_timeout_ms = path, busy_timeout_ms
        self.min_free_bytes = min_free_bytes
        self.file_id: tuple[int, int] | None = None  # of the file opened (None: in memory)
        if not _in_memory(path) and not os.path.exists(path):
            log.warning("ledger database %s does not exist: creating an empty one", os.path.abspath(path))
        self._conns = _Conns(self._connect)
        c = self._conns.get()
        if not _in_memory(path):
            self.file_id = _file_id(path)
        c.execute("PRAGMA journal_mode=WAL")
        with self.transaction() as tx:
            for stmt in SCHEMA:
                tx.cur.execute(stmt.format(blob="BLOB"))
            tx.cur.execute("PRAGMA table_info(entries)")
            _migrate(tx, any(r[1] == "leaf" for r in tx.cur.fetchall()), "BLOB")

    def _connect(self):
        c = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                            timeout=self.busy_timeout_ms / 1000)
        c.execute("PRAGMA synchronous=FULL")
        return c

    def _query(self, sql, args=()):
        return self._conns.get().execute(sql, args).fetchall()

    def problem(self) -> str | None:
        """Why this store cannot take writes now (its file gone or replaced, its disk full), or
        None. Cheap: one stat (and one statvfs), no query."""
        if self.file_id is None:
            return None
        now = _file_id(self.path)
        if now is None:
            return f"the ledger database {self.path} was deleted while in use"
        if now != self.file_id:
            return f"the ledger database {self.path} was replaced by another file while in use"
        try:
            st = os.statvfs(self.path)
        except OSError as e:
            return f"the file system of {self.path} cannot be read: {e}"
        free = st.f_bavail * st.f_frsize
        if free < self.min_free_bytes:
            return f"the disk of {self.path} is full ({free} bytes free, {self.min_free_bytes} needed)"
        return None

    def ping(self) -> bool:
        """Ready: the path still names the opened file, the disk has room, a query answers."""
        return self.problem() is None and super().ping()

    def _same_file(self) -> None:
        if self.file_id is not None and _file_id(self.path) != self.file_id:
            raise StoreGone(f"the ledger database {self.path} was deleted or replaced while in use: "
                            "nothing was committed")

    @contextmanager
    def transaction(self):
        c = self._conns.get()
        c.execute("BEGIN IMMEDIATE")
        try:
            yield _Tx(c.cursor(), "?")
            self._same_file()  # never COMMIT into an unlinked or replaced file
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
            for stmt in SCHEMA + (SNAPSHOTS,):
                tx.cur.execute(stmt.format(blob="BYTEA"))
            tx.cur.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                           "AND table_name = 'entries' AND column_name = 'leaf'")
            _migrate(tx, bool(tx.cur.fetchall()), "BYTEA")

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

    # ---------------------------------------------------------------- snapshots (a cache)
    # Written on the snapshot thread's own connection, in autocommit and without the writers'
    # advisory lock: a snapshot never waits for, nor holds up, a ledger write.

    def snapshot_list(self, service: str) -> list[int]:
        """The `taken` marks of the service's snapshots, newest first."""
        return [t for (t,) in self._query("SELECT taken FROM snapshots WHERE service = %s ORDER BY taken DESC",
                                          (service,))]

    def snapshot_read(self, service: str, taken: int) -> bytes | None:
        rows = self._query("SELECT data FROM snapshots WHERE service = %s AND taken = %s", (service, taken))
        return bytes(rows[0][0]) if rows else None

    def snapshot_write(self, service: str, taken: int, data: bytes) -> None:
        with self._conns.get().cursor() as cur:
            cur.execute("INSERT INTO snapshots (service, taken, data) VALUES (%s, %s, %s) "
                        "ON CONFLICT (service, taken) DO NOTHING", (service, taken, data))  # same cut: same state

    def snapshot_prune(self, service: str, keep: int) -> None:
        with self._conns.get().cursor() as cur:
            cur.execute("DELETE FROM snapshots WHERE service = %s AND taken NOT IN (SELECT taken FROM snapshots "
                        "WHERE service = %s ORDER BY taken DESC LIMIT %s)", (service, service, keep))

