"""Durable ledger storage on both backends (SQLite file, throwaway PostgreSQL): round trips,
rollback, two processes appending through one exclusive transaction, and tamper detection by
verify_store / verify_command with raw SQL edits."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lwas.runtime.checkpoint import key_name_for
from lwas.runtime.ledger import Ledger, append_batch, decode_entry, encode_entry
from lwas.runtime.merkle import leaf_hash
from lwas.runtime.store import MissingEntries, open_store
from lwas.runtime.verify import verify_command, verify_store
from postgres import postgres_url  # noqa: F401  (fixture)

SEED = bytes(range(32))
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
PUB = KEY.public_key()
ART = hashlib.sha512(b"artifact").digest()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    import psycopg

    base = request.getfixturevalue("postgres_url")
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return base.replace("/lwas?", f"/{name}?")


def raw(url: str, sql: str, args=()) -> None:
    """Tampering behind the store's back, as an attacker with database access would."""
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as c:
            c.execute(sql.replace("?", "%s"), args)
    else:
        c = sqlite3.connect(url)
        c.execute(sql, args)
        c.commit()
        c.close()


def new_ledger(name="payments") -> Ledger:
    return Ledger(name, f"lwas.test/{name}", KEY)


def filled(url: str, n: int = 20, batch: int = 5):
    store = open_store(url)
    lg = new_ledger()
    for b in range(0, n, batch):
        res = append_batch(store, lg, [(f"k{i}", b"payload-%d" % i) for i in range(b, b + batch)],
                           1_700_000_000_000_000 + b, ART)
        assert [s for s, _ in res] == ["new"] * batch
    return store, lg


def test_append_read_round_trip(url):
    store, lg = filled(url, 20, 5)
    try:
        rows = list(store.read("payments"))
        assert [r[0] for r in rows] == list(range(20))
        assert [r[2] for r in rows] == lg.entries()
        assert [r[1] for r in rows] == [f"k{i}" for i in range(20)]
        assert list(store.read("payments", 17)) == rows[18:]
        assert [s for s, _ in store.checkpoints("payments")] == [5, 10, 15, 20]
        assert store.ledgers() == ["payments"] and store.ping()
        # idempotent retry and conflict: nothing new written
        assert append_batch(store, lg, [("k3", b"payload-3"), ("k4", b"other")], 1, ART) == \
            [("exists", 3), ("conflict", 4)]
        assert len(list(store.read("payments"))) == 20
        # a second ledger object catches up from the store
        other = new_ledger()
        assert append_batch(store, other, [("z", b"zz")], 2, ART) == [("new", 20)]
        lg.catch_up(store.read("payments", lg.size - 1))
        assert lg.size == 21 and lg.tree.root() == other.tree.root()
        assert verify_store(url, PUB).ok
    finally:
        store.close()


def test_rollback_writes_nothing(url):
    store, lg = filled(url, 5, 5)
    try:
        with pytest.raises(RuntimeError):
            with store.transaction() as tx:
                tx.append_many("payments", [(5, "x", b"bogus")])
                tx.add_checkpoint("payments", 6, "note")
                raise RuntimeError("boom")
        assert len(list(store.read("payments"))) == 5
        assert [s for s, _ in store.checkpoints("payments")] == [5]
        # append_batch rolls the in-memory ledger back too when the store fails
        with pytest.raises(RuntimeError, match="disk on fire"):
            append_batch(FailingCheckpoint(store), lg, [("boom", b"x")], 1, ART)
        assert lg.size == 5 and lg.staged() == [] and lg.check("boom", b"x") == "new"
        assert append_batch(store, lg, [("boom", b"x")], 1, ART) == [("new", 5)]
        assert verify_store(url, PUB).ok
    finally:
        store.close()


class FailingCheckpoint:
    """A store whose checkpoint insert fails after the batch's rows were appended."""

    def __init__(self, store):
        self.store = store

    @contextmanager
    def transaction(self):
        with self.store.transaction() as tx:
            def boom(*args):
                raise RuntimeError("disk on fire")
            tx.add_checkpoint = boom
            yield tx


def test_concurrent_reader_while_writing(url):
    store, lg = filled(url, 10, 10)
    seen = []
    try:
        with store.transaction() as tx:
            tx.append_many("payments", [])
            t = threading.Thread(target=lambda: seen.append((store.ping(),
                                                             len(list(store.read("payments"))))))
            t.start()
            t.join(10)
        assert seen == [(True, 10)]
    finally:
        store.close()


def test_leaf_hashes_are_stored_and_read_without_the_entries(url):
    store, lg = filled(url, 20, 5)
    try:
        with store.transaction() as tx:
            rows = list(tx.rows("payments", 14))
            assert [r[0] for r in rows] == list(range(15, 20))
            assert all(h == leaf_hash(e) for _, _, e, h in rows)
            keys, leaves = tx.hashes("payments", 20)
            assert keys == [f"k{i}" for i in range(20)]
            assert leaves == b"".join(leaf_hash(e) for e in lg.entries())
            assert tx.hashes("payments", 0) == ([], b"")
            with pytest.raises(MissingEntries):
                tx.hashes("payments", 21)
        assert store.entry("payments", 7) == lg.entry(7) and store.entry("payments", 20) is None
        assert store.last_checkpoint("payments")[0] == 20 and store.last_checkpoint("nope") is None
    finally:
        store.close()
    # a row an older runtime wrote (no leaf hash) is hashed when read, and the hash stored
    raw(url, "UPDATE entries SET leaf = NULL WHERE ledger = 'payments' AND seq IN (3, 11)")
    store = open_store(url)
    try:
        with store.transaction() as tx:
            assert tx.hashes("payments", 20)[1] == b"".join(leaf_hash(e) for e in lg.entries())
        with store.transaction() as tx:
            assert all(h is not None for *_, h in tx.rows("payments"))
        raw(url, "DELETE FROM entries WHERE ledger = 'payments' AND seq = 4")
        with store.transaction() as tx:  # a gap is named
            with pytest.raises(MissingEntries, match="1 of the entries 0..19 are missing"):
                tx.hashes("payments", 20)
    finally:
        store.close()


def test_an_older_database_gets_its_leaf_column(url):
    """A store made before the leaf column: opening it adds the column and fills it."""
    lg = new_ledger()
    for i in range(7):
        lg.stage(f"k{i}", b"p%d" % i, i, ART)
    rows = lg.staged()
    lg.commit()
    raw(url, "CREATE TABLE entries (ledger TEXT NOT NULL, seq BIGINT NOT NULL, key TEXT NOT NULL, "
             f"entry {'BYTEA' if url.startswith('postgresql') else 'BLOB'} NOT NULL, PRIMARY KEY (ledger, seq), "
             "UNIQUE (ledger, key))")
    for seq, key, data, _ in rows:
        raw(url, "INSERT INTO entries (ledger, seq, key, entry) VALUES ('payments', ?, ?, ?)", (seq, key, data))
    store = open_store(url)
    try:
        with store.transaction() as tx:
            got = list(tx.rows("payments"))
        assert got == [(s, k, e, leaf_hash(e)) for s, k, e, _ in rows]
    finally:
        store.close()
    open_store(url).close()  # a second open finds the column and changes nothing


WRITER = r"""
import hashlib, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lwas.runtime.ledger import Ledger, append_batch
from lwas.runtime.store import open_store
url, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
store = open_store(url)
lg = Ledger("payments", "lwas.test/payments", key)
for b in range(0, n, 5):
    items = [(f"{tag}-{i}", b"p" + tag.encode()) for i in range(b, b + 5)]
    assert all(s == "new" for s, _ in append_batch(store, lg, items, b, hashlib.sha512(b"a").digest()))
store.close()
"""


def test_two_processes_keep_one_chain(url):
    open_store(url).close()  # schema exists before the race
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, tag, "150"], env=env)
             for tag in ("a", "b")]
    assert [p.wait(120) for p in procs] == [0, 0]
    report = verify_store(url, PUB)
    assert report.ok, report.text()
    assert report.entries == 300 and report.ledgers["payments"]["checkpoints"] == 60
    store = open_store(url)
    try:
        keys = [k for _, k, _ in store.read("payments")]
        assert sorted(keys) == sorted([f"a-{i}" for i in range(150)] + [f"b-{i}" for i in range(150)])
        tags = {k[0] for k in keys[:150]} | {k[0] for k in keys[150:]}
        assert tags == {"a", "b"}
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# tampering


def pem(tmp_path: Path) -> str:
    p = tmp_path / "pub.pem"
    p.write_bytes(PUB.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return str(p)


def expect_bad(url: str, tmp_path: Path, seq: int, key: str | None, words: str):
    report = verify_store(url, PUB)
    assert not report.ok
    p = report.problem
    assert (p.ledger, p.seq, p.key) == ("payments", seq, key), report.text()
    assert words in p.reason, report.text()
    out = io.StringIO()
    assert verify_command(url, pem(tmp_path), out=out) == 1
    assert "TAMPERED" in out.getvalue() and f"seq {seq}" in out.getvalue()
    out = io.StringIO()
    assert verify_command(url, pem(tmp_path), fmt="json", out=out) == 1
    doc = json.loads(out.getvalue())
    assert doc["ok"] is False and doc["problem"]["seq"] == seq and doc["problem"]["key"] == key


def test_untampered_store_verifies(url, tmp_path):
    filled(url)[0].close()
    out = io.StringIO()
    assert verify_command(url, pem(tmp_path), out=out) == 0
    assert out.getvalue().startswith("OK: 1 ledgers, 20 entries, 4 signed checkpoints")
    out = io.StringIO()
    assert verify_command(url, pem(tmp_path), fmt="json", out=out) == 0
    assert json.loads(out.getvalue())["entries"] == 20


def test_tamper_payload_byte(url, tmp_path):
    store, lg = filled(url)
    store.close()
    data = bytearray(lg.entry(7))
    data[-1] ^= 1
    raw(url, "UPDATE entries SET entry = ? WHERE ledger = 'payments' AND seq = 7", (bytes(data),))
    expect_bad(url, tmp_path, 7, "k7", "entry changed")


def test_tamper_last_payload_caught_by_signed_root(url, tmp_path):
    store, lg = filled(url)
    store.close()
    data = bytearray(lg.entry(19))
    data[-1] ^= 1
    raw(url, "UPDATE entries SET entry = ? WHERE ledger = 'payments' AND seq = 19", (bytes(data),))
    expect_bad(url, tmp_path, 19, "k19", "Merkle root at signed tree size 20 differs")


def test_tamper_delete_row(url, tmp_path):
    filled(url)[0].close()
    raw(url, "DELETE FROM entries WHERE ledger = 'payments' AND seq = 12")
    expect_bad(url, tmp_path, 13, "k13", "missing before it: expected seq 12")


def test_tamper_delete_tail(url, tmp_path):
    filled(url)[0].close()
    raw(url, "DELETE FROM entries WHERE ledger = 'payments' AND seq >= 18")
    expect_bad(url, tmp_path, 18, None, "entries were deleted")


def test_tamper_swap_rows(url, tmp_path):
    filled(url)[0].close()
    for a, b in [(3, -1), (4, 3), (-1, 4)]:
        raw(url, "UPDATE entries SET seq = ? WHERE ledger = 'payments' AND seq = ?", (b, a))
    expect_bad(url, tmp_path, 3, "k4", "carry seq 4")


def test_tamper_forged_row_well_chained(url, tmp_path):
    store, lg = filled(url)
    store.close()
    forged = encode_entry(20, 0, ART, leaf_hash(lg.entry(19)), "forged", b"free money")
    raw(url, "INSERT INTO entries (ledger, seq, key, entry) VALUES ('payments', 20, 'forged', ?)",
        (forged,))
    expect_bad(url, tmp_path, 20, "forged", "not covered by any signed checkpoint")
    report = verify_store(url, PUB, allow_unsigned_tail=True)
    assert report.ok and report.ledgers["payments"] == {"entries": 21, "checkpoints": 4,
                                                        "unsigned": 1}
    out = io.StringIO()
    assert verify_command(url, pem(tmp_path), out=out, allow_unsigned_tail=True) == 0
    assert "1 past the last checkpoint" in out.getvalue()


def test_tamper_forged_checkpoint_and_rewritten_prev(url, tmp_path):
    store, lg = filled(url)
    store.close()
    # rewrite entry 9's prev field: 8 -> 9 breaks, and 10 no longer carries 9's hash either,
    # so 9 (not 8) is named
    e = decode_entry(lg.entry(9))
    bad = encode_entry(e.seq, e.time_micros, e.artifact, bytes(32), e.key, e.payload)
    raw(url, "UPDATE entries SET entry = ? WHERE ledger = 'payments' AND seq = 9", (bad,))
    expect_bad(url, tmp_path, 9, "k9", "prev hash does not match entry 8")
    raw(url, "UPDATE entries SET entry = ? WHERE ledger = 'payments' AND seq = 9", (lg.entry(9),))
    assert verify_store(url, PUB).ok
    other = Ed25519PrivateKey.generate()
    from lwas.runtime.checkpoint import sign_checkpoint
    note = sign_checkpoint("lwas.test/payments", 21, bytes(32), other, "lwas-forger")
    raw(url, "INSERT INTO checkpoints (ledger, tree_size, note) VALUES ('payments', 21, ?)", (note,))
    report = verify_store(url, PUB)
    assert not report.ok and report.problem.seq is None
    assert "checkpoint at tree size 21: checkpoint: no signature by key" in report.problem.reason


def test_verify_with_another_key_says_wrong_key_not_tampered(url, tmp_path):
    filled(url)[0].close()
    other = tmp_path / "other.pem"
    other.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM,
                                                                             PublicFormat.SubjectPublicKeyInfo))
    out = io.StringIO()
    assert verify_command(url, str(other), out=out) == 2  # nothing can be said with this key
    text = out.getvalue()
    assert text.startswith("WRONG KEY: ledger 'payments'") and "TAMPERED" not in text, text
    assert f"signed by {key_name_for(PUB)}" in text
    # a signature by the right key that does not verify is tampering
    store = open_store(url)
    note = next(n for size, n in store.checkpoints("payments") if size == 5)
    store.close()
    body, sig = note.split("\n\n")
    name, blob = sig.split(" ")[1], base64.b64decode(sig.split(" ")[2])
    forged = body + "\n\n" + "\u2014 " + name + " " + base64.b64encode(blob[:-1] + bytes([blob[-1] ^ 1])).decode() + "\n"
    raw(url, "UPDATE checkpoints SET note = ? WHERE ledger = 'payments' AND tree_size = 5", (forged,))
    out = io.StringIO()
    assert verify_command(url, pem(tmp_path), out=out) == 1
    assert out.getvalue().startswith("TAMPERED") and "bad signature" in out.getvalue(), out.getvalue()


def test_verify_command_cannot_open(tmp_path):
    missing = str(tmp_path / "nope.db")
    assert verify_command(missing, pem(tmp_path), out=io.StringIO()) == 2
    assert not os.path.exists(missing)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    assert verify_command(str(junk), pem(tmp_path), out=io.StringIO()) == 2
    assert verify_command(str(junk), str(tmp_path / "nokey.pem"), out=io.StringIO()) == 2
    assert verify_command("postgresql://nobody@/x?host=/nonexistent&port=1", pem(tmp_path),
                          out=io.StringIO()) == 2
