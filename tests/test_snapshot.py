"""State snapshots (lwas.runtime.snapshot) and a start from the newest valid one plus the tail.

- property: whatever the appends (two ledgers, retries, conflicts), wherever snapshots are taken
  (by hand or by the entry trigger) and the service restarted, a start from snapshot + tail
  gives the state, ledger sizes, roots, checkpoints and proofs of a full replay;
- a `kill -9` of a real process while it writes a snapshot file leaves a store that starts (from
  the previous snapshot) with the right state, and the torn temporary file is removed;
- a damaged, truncated, unsigned, foreign-artifact or wrong-root snapshot, and one from another
  key, is ignored with ONE log line naming it and the reason; the state is still right (an older
  valid snapshot, or a full replay);
- the store's leaf-hash column: migrated into an older database, filled for rows an older
  runtime wrote; entry bytes are read back from the store for proofs and idempotency checks;
- PostgreSQL keeps snapshots in its `snapshots` table.

Every loop is bounded in count and time; nothing listens on a network port.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import helpers
import rfc9162
from helpers import OFF
from lwas.backend import keys
from lwas.runtime import snapshot
from lwas.runtime.host import Service
from lwas.runtime.ledger import decode_entry
from lwas.runtime.merkle import MerkleTree, leaf_hash
from lwas.runtime.snapshot import MAGIC, Policy, _U32
from lwas.runtime.store import open_store
from lwas.runtime.verify import verify_store
from postgres import postgres_url  # noqa: F401  (session fixture: a throwaway PostgreSQL cluster)
from serving import GRACEFUL, lwasc


SOURCE = """\
module snaps

enum Kind { Credit, Debit }

record Move {
  id: text
  account: text
  amount: int
  kind: Kind
}

record Note {
  id: text
  body: text
}

record Totals {
  total: int
  moved: int
  noted: int
  order: int
  last: text
}

service snaps {
  ledger moves: Move by id
  ledger notes: Note by id

  state total: int = 0
  state moved: int = 0
  state noted: int = 0
  state order: int = 0
  state last: text = ""
  state balances: {text: int} = {}
  state bodies: {int: text} = {}

  on moves(m) {
    if m.kind == Credit {
      state.total += m.amount
    } else {
      state.total -= m.amount
    }
    state.balances[m.account] = get(state.balances, m.account, 0) + m.amount
    state.moved += 1
    state.order = (state.order * 31 + m.amount) % 1000003
  }

  on notes(n) {
    state.noted += 1
    state.last = n.body
    state.bodies[state.noted] = n.body
    state.order = (state.order * 7 + state.noted) % 1000003
  }

  post "/moves" (m: Move) -> int {
    append moves(m)
    return state.moved
  }

  get "/totals" -> Totals {
    return Totals(total: state.total, moved: state.moved, noted: state.noted, order: state.order, last: state.last)
  }
}
"""

class Built(helpers.Built):
    """The compiled, signed test service and its key."""

    def __init__(self, home: Path):
        super().__init__(home, "snaps", SOURCE)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    return Built(tmp_path_factory.mktemp("snaps"))


class Running(helpers.Running):
    """A started Service on its own store; close() stops both."""

    def move(self, id: str, account: str = "a", amount: int = 1, kind: str = "Credit") -> str:
        return self.append(0, {"id": id, "account": account, "amount": amount, "kind": kind})

    def note(self, id: str, body: str = "n") -> str:
        return self.append(1, {"id": id, "body": body})

    def append(self, i: int, value: dict) -> str:
        out = self.svc.call({"append": (i, value), "method": "APPEND", "path": "test"}, ())
        return out.ledger

    def snap(self):
        out = self.svc.snapshots.write_now()
        assert out is not None
        return out[0]


def observed(svc: Service) -> dict:
    """Everything a start must reproduce: the state, and per ledger size, root, checkpoint note
    and a proof of its first and last entries."""
    out = {"state": svc.state}
    for lg in svc.ledgers:
        keys_ = [decode_entry(lg.entry(i)).key for i in {0, lg.size - 1} if lg.size]
        out[lg.name] = (lg.size, lg.tree.root().hex(), lg.checkpoint()["checkpoint"] if lg.size else None,
                        [lg.proof(k) for k in keys_])
    return out


def full_replay(b: Built, db: str) -> dict:
    """What a start without snapshots gives (they are looked for in an empty directory)."""
    with tempfile.TemporaryDirectory() as empty, Running(b, db, Policy(0, 0, directory=empty)) as r:
        assert r.svc.restored is None
        return observed(r.svc)


def shelf_dir(db: str) -> Path:
    return Path(db + "-snapshots")


def snapshot_files(db: str) -> list[Path]:
    return sorted(shelf_dir(db).glob("*.lwsnap"))


# ------------------------------------------------------------------------------ the property


move = st.tuples(st.just("move"), st.integers(0, 11), st.sampled_from(["a", "b", "c"]), st.integers(1, 50),
                st.sampled_from(["Credit", "Debit"]))
note = st.tuples(st.just("note"), st.integers(0, 7), st.text("xyz€\n", max_size=6))
op = st.one_of(move, move, note, st.just(("snap",)), st.just(("snap",)), st.just(("restart",)))


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=4, max_size=30), every=st.sampled_from([0, 0, 1, 3]))
def test_snapshot_plus_tail_equals_full_replay(built, ops, every):
    policy = Policy(every_entries=every, every_seconds=0)
    with tempfile.TemporaryDirectory() as d:
        db = str(Path(d) / "l.db")
        r = Running(built, db, policy)
        snapped = False
        try:
            for o in ops:
                if o[0] == "move":
                    _, k, account, amount, kind = o
                    assert r.move(f"m{k}", account, amount, kind) in ("created", "exists", "conflict")
                elif o[0] == "note":
                    assert r.note(f"n{o[1]}", o[2]) in ("created", "exists", "conflict")
                elif o[0] == "snap":
                    if sum(lg.size for lg in r.svc.ledgers):
                        r.snap()
                        snapped = True
                else:
                    r.close()
                    r = Running(built, db, policy)
            live = observed(r.svc)
        finally:
            r.close()
        snapped = snapped or bool(snapshot_files(db))
        with Running(built, db, OFF) as again:
            assert (again.svc.restored is not None) == snapped
            if snapped:
                covered = again.svc.restored.entries
                assert again.svc.replayed == sum(lg.size for lg in again.svc.ledgers) - covered
                event(f"restart from a snapshot, {'some' if again.svc.replayed else 'no'} tail")
            else:
                event("restart with no snapshot")
            assert observed(again.svc) == live
        assert full_replay(built, db) == live
        assert len(snapshot_files(db)) <= policy.keep


def test_state_and_proofs_after_a_snapshot_start(built, tmp_path):
    db = str(tmp_path / "l.db")
    with Running(built, db) as r:
        for i in range(40):
            r.move(f"m{i}", "ab"[i % 2], i + 1, "Debit" if i % 3 == 0 else "Credit")
            if i % 4 == 0:
                r.note(f"n{i}", "x" * (i % 5))
        name = r.snap()
        for i in range(40, 45):
            r.move(f"m{i}")
        before = observed(r.svc)
    assert name in [p.name for p in snapshot_files(db)]
    with Running(built, db) as r:
        assert r.svc.restored.name == name and r.svc.restored.entries == 50 and r.svc.replayed == 5
        assert observed(r.svc) == before
        # idempotency stays exact for keys covered by the snapshot (compared with the stored bytes)
        assert r.move("m3", "b", 4, "Debit") == "exists"
        assert r.move("m3", "b", 5, "Debit") == "conflict"
        assert r.move("m44") == "exists" and r.move("m45") == "created"
        lg = r.svc.by_name["moves"]
        p = lg.proof("m7")
        _, n, root = rfc9162_checkpoint(p["checkpoint"], built.key)
        entry = base64.b64decode(p["entry"])
        assert leaf_hash(entry).hex() == p["leaf_hash"] and decode_entry(entry).key == "m7"
        assert rfc9162.verify_inclusion(p["leaf_index"], n, leaf_hash(entry),
                                        [bytes.fromhex(h) for h in p["audit_path"]], root)
    assert verify_store(db, built.key.public_key()).ok


def test_a_long_replay_goes_page_by_page_in_time_order(built, tmp_path, monkeypatch):
    from lwas.runtime import host

    db = str(tmp_path / "l.db")
    with Running(built, db) as r:
        for i in range(31):
            r.move(f"m{i}", "abc"[i % 3], i + 1, "Debit" if i % 4 == 0 else "Credit")
            if i % 3 == 0:
                r.note(f"n{i}", f"note {i}")
        want = observed(r.svc)
    monkeypatch.setattr(host, "REPLAY_PAGE", 4)
    with tempfile.TemporaryDirectory() as empty, Running(built, db, Policy(0, 0, directory=empty)) as r:
        assert r.svc.replayed == 42 and observed(r.svc) == want


def rfc9162_checkpoint(note: str, key):
    from lwas.runtime.checkpoint import parse_checkpoint

    return parse_checkpoint(note, key.public_key())


def test_snapshots_are_written_by_the_entry_and_time_triggers(built, tmp_path):
    db = str(tmp_path / "l.db")
    with Running(built, db, Policy(every_entries=5, every_seconds=0, keep=2)) as r:
        for i in range(23):
            r.move(f"m{i}")
        deadline = time.monotonic() + 20
        while r.svc.snapshots.written < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.svc.snapshots.written >= 3
    assert 1 <= len(snapshot_files(db)) <= 2  # the newest `keep`
    db2 = str(tmp_path / "t.db")
    with Running(built, db2, Policy(every_entries=0, every_seconds=0.3)) as r:
        r.move("only")
        deadline = time.monotonic() + 20  # the idle writer looks every 0.5 s
        while not snapshot_files(db2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(snapshot_files(db2)) == 1
        time.sleep(1.2)  # nothing new: no second snapshot
        assert len(snapshot_files(db2)) == 1
    with Running(built, db2) as r:
        assert r.svc.restored is not None and r.svc.replayed == 0 and r.svc.state["moved"] == 1


def test_policy_from_environment():
    p = Policy.from_env({"LWAS_SNAPSHOT_EVERY_ENTRIES": "7", "LWAS_SNAPSHOT_EVERY_SECONDS": "0",
                         "LWAS_SNAPSHOT_KEEP": "5", "LWAS_SNAPSHOT_DIR": "/x"})
    assert (p.every_entries, p.every_seconds, p.keep, p.directory, p.writes) == (7, 0.0, 5, "/x", True)
    d = Policy.from_env({})
    assert (d.every_entries, d.every_seconds, d.keep, d.directory) == (10_000, 300.0, 3, None)
    assert not Policy.from_env({"LWAS_SNAPSHOT_EVERY_ENTRIES": "0", "LWAS_SNAPSHOT_EVERY_SECONDS": "0"}).writes
    assert Policy.from_env({"LWAS_SNAPSHOT_EVERY_ENTRIES": "9"}, every_entries=3).every_entries == 3
    for env in [{"LWAS_SNAPSHOT_EVERY_ENTRIES": "many"}, {"LWAS_SNAPSHOT_EVERY_SECONDS": "-1"},
                {"LWAS_SNAPSHOT_KEEP": "0"}, {"LWAS_SNAPSHOT_EVERY_SECONDS": "nan"}]:
        with pytest.raises(ValueError, match="LWAS_SNAPSHOT"):
            Policy.from_env(env)


# ------------------------------------------------------------------------------ kill -9


CHILD = r"""
import hashlib, os, sys, time
from lwas.backend import keys
from lwas.runtime import snapshot
from lwas.runtime.host import Service
from lwas.runtime.loader import load_verified
from lwas.runtime.store import open_store

art_path, key_path, db = sys.argv[1:4]
key = keys.load_private(open(key_path, "rb").read())
data = open(art_path, "rb").read()
art, program = load_verified(data, [key.public_key()])
(desc,) = art.manifest["services"]
store = open_store(db)
svc = Service(program, desc, store, key, hashlib.sha512(data).digest(),
              snapshots=snapshot.Policy(every_entries=0, every_seconds=0))
svc.start()

def move(i):
    v = {"id": f"m{i}", "account": "ab"[i % 2], "amount": i + 1, "kind": "Credit"}
    assert svc.call({"append": (0, v), "method": "APPEND", "path": "t"}, ()).ledger == "created"

for i in range(30):
    move(i)
assert svc.snapshots.write_now() is not None      # the first snapshot, complete
for i in range(30, 50):
    move(i)

real = snapshot._write_all
calls = []
def stuck(fd, data):                               # write part of the second snapshot, then hang
    real(fd, data)
    calls.append(len(data))
    if len(calls) == 2:
        print("WRITING", flush=True)
        time.sleep(120)
snapshot._write_all = stuck
snapshot.CHUNK = 64
svc.snapshots.write_now()
print("NOT KILLED", flush=True)
"""


def test_kill_9_while_writing_a_snapshot_leaves_a_start_that_works(built, tmp_path):
    db = str(tmp_path / "l.db")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(built.art_path), str(built.key_path), db],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # bounded: one line per iteration, the child prints two at most
            line = proc.stdout.readline()
            if line.strip() in ("WRITING", "NOT KILLED") or not line:
                break
        assert line.strip() == "WRITING", (line, proc.stderr.read() if proc.poll() is not None else "")
        temps = list(shelf_dir(db).glob(".snaps-*.tmp"))
        assert len(temps) == 1 and temps[0].stat().st_size > 0  # caught in the middle of writing
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=20) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)
        proc.stdout.close()
        proc.stderr.close()
    assert len(snapshot_files(db)) == 1  # only the complete one is there under its final name
    with Running(built, db) as r:
        assert r.svc.restored is not None and r.svc.restored.entries == 30 and r.svc.replayed == 20
        got = observed(r.svc)
        assert got["state"]["moved"] == 50 and got["state"]["total"] == sum(range(1, 51))
    assert not list(shelf_dir(db).glob(".*.tmp"))  # the dead writer's temporary file is swept
    assert full_replay(built, db) == got
    assert verify_store(db, built.key.public_key()).ok


def test_lwasc_serve_writes_snapshots_and_starts_from_one(built, tmp_path, monkeypatch):
    from serving import served

    db = str(tmp_path / "l.db")
    monkeypatch.setenv("LWAS_SNAPSHOT_EVERY_ENTRIES", "4")
    monkeypatch.setenv("LWAS_SNAPSHOT_EVERY_SECONDS", "0")
    with served(built.art_path, db=db, key=built.key_path, pubkey=built.pub_path, home=tmp_path / "h",
                log_level="info") as srv:
        with httpx.Client(base_url=srv.url, headers=srv.auth, timeout=20) as http:
            for i in range(9):
                r = http.post("/moves", json={"id": f"m{i}", "account": "a", "amount": i, "kind": "Credit"})
                assert r.status_code == 200, r.text
            deadline = time.monotonic() + 20
            while len(snapshot_files(db)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(snapshot_files(db)) == 2  # after 4 and 8 entries (or later, when a commit
            # lands while the snapshot is being taken)
            want = http.get("/totals").json()
        assert srv.stop() in GRACEFUL
    monkeypatch.setenv("LWAS_SNAPSHOT_EVERY_ENTRIES", "many")
    r = lwasc("serve", built.art_path, "--db", db, "--key", built.key_path, "--pubkey", built.pub_path,
              "--port", "1", home=tmp_path / "h")
    assert r.returncode != 0 and "LWAS_SNAPSHOT_EVERY_ENTRIES must be a number" in r.stderr
    monkeypatch.delenv("LWAS_SNAPSHOT_EVERY_ENTRIES")
    with served(built.art_path, db=db, key=built.key_path, pubkey=built.pub_path, home=tmp_path / "h",
                log_level="info") as srv:
        with httpx.Client(base_url=srv.url, timeout=20) as http:
            assert http.get("/totals").json() == want == {"total": 36, "moved": 9, "noted": 0, "order": want["order"],
                                                          "last": ""}
        assert srv.stop() in GRACEFUL
        log = srv.log_text()
    m = re.search(r"state from snapshot snaps-\S* \((\d+) entries\), (\d+) entries replayed after it", log)
    assert m, log[-2000:]
    at, replayed = int(m[1]), int(m[2])
    assert at >= 8 and at + replayed == 9  # the newest snapshot, then only the entries after it


# ------------------------------------------------------------------------------ bad snapshots


def split(data: bytes) -> tuple[dict, bytes, bytes]:
    """(header, signature, body) of a snapshot file."""
    at = len(MAGIC)
    n = _U32.unpack_from(data, at)[0]
    header = data[at + 4:at + 4 + n]
    m = _U32.unpack_from(data, at + 4 + n)[0]
    sig = data[at + 8 + n:at + 8 + n + m]
    return json.loads(header), sig, data[at + 8 + n + m:]


def join(header: dict, body: bytes, key=None, sig: bytes | None = None) -> bytes:
    hb = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if sig is None:
        sig = key.sign(snapshot.SIGNED + hb) if key is not None else b""
    return MAGIC + _U32.pack(len(hb)) + hb + _U32.pack(len(sig)) + sig + body


def filled(b: Built, db: str, n: int = 12, snaps=(8,)) -> list[Path]:
    """n moves, a snapshot after each count in `snaps`: the snapshot files, oldest first."""
    with Running(b, db) as r:
        for i in range(n):
            r.move(f"m{i}", "ab"[i % 2], i + 1)
            if i + 1 in snaps:
                r.snap()
    return snapshot_files(db)


OTHER = keys.generate()


def damage_byte(b, path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # in the body: the tree or state section no longer has its signed digest
    path.write_bytes(bytes(data))
    return "damaged: section"


def truncate(b, path):
    path.write_bytes(path.read_bytes()[:40])
    return "damaged: truncated"


def garbage(b, path):
    path.write_bytes(b"not a snapshot at all")
    return "damaged: not a snapshot"


def unsigned(b, path):
    h, _, body = split(path.read_bytes())
    path.write_bytes(join(h, body))
    return "unsigned"


def forged(b, path):  # claims this service's key, signed by another
    h, _, body = split(path.read_bytes())
    h["last_time"] += 1
    path.write_bytes(join(h, body, OTHER))
    return "bad signature"


def edited_header(b, path):  # a signed header changed afterwards
    h, sig, body = split(path.read_bytes())
    h["last_time"] += 1
    path.write_bytes(join(h, body, sig=sig))
    return "bad signature"


def foreign_artifact(b, path):
    h, _, body = split(path.read_bytes())
    h["artifact"] = hashlib.sha512(b"another program").hexdigest()
    path.write_bytes(join(h, body, b.key))
    return "made by another artifact"


def wrong_leaves(b, path):  # signed, but the store holds other entries than it says
    h, _, body = split(path.read_bytes())
    h["ledgers"][0]["leaves"] = hashlib.sha256(b"other entries").hexdigest()
    path.write_bytes(join(h, body, b.key))
    return "holds other entries than the snapshot"


def too_many(b, path):  # signed, covering entries the store does not have
    h, _, body = split(path.read_bytes())
    for l in h["ledgers"]:
        l["size"] += 100
    path.write_bytes(join(h, body, b.key))
    return "does not hold its entries"


def other_service(b, path):
    h, _, body = split(path.read_bytes())
    h["service"] = "bank"
    path.write_bytes(join(h, body, b.key))
    return "belongs to service 'bank'"


def newer_format(b, path):
    h, _, body = split(path.read_bytes())
    h["version"] = 2
    path.write_bytes(join(h, body, b.key))
    return "version 2"


BAD = [damage_byte, truncate, garbage, unsigned, forged, edited_header, foreign_artifact, wrong_leaves, too_many,
       other_service, newer_format]


@pytest.mark.parametrize("spoil", BAD, ids=[f.__name__ for f in BAD])
def test_a_bad_snapshot_is_ignored_with_one_log_line(built, tmp_path, caplog, spoil):
    db = str(tmp_path / "l.db")
    older, newest = filled(built, db, n=12, snaps=(5, 9))
    want = full_replay(built, db)
    words = spoil(built, newest)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lwas"):
        with Running(built, db) as r:
            # the older, valid snapshot is used, and the entries after it replayed
            assert r.svc.restored is not None and r.svc.restored.name == older.name
            assert r.svc.restored.entries == 5 and r.svc.replayed == 7
            assert observed(r.svc) == want
    lines = [rec.getMessage() for rec in caplog.records if "ignored" in rec.getMessage()]
    assert len(lines) == 1, lines
    assert newest.name in lines[0] and words in lines[0], lines[0]
    assert all(rec.levelno == logging.WARNING for rec in caplog.records if "ignored" in rec.getMessage())
    # without the older one, a full replay
    older.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lwas"), Running(built, db) as r:
        assert r.svc.restored is None and r.svc.replayed == 12 and observed(r.svc) == want
    assert len([rec for rec in caplog.records if "ignored" in rec.getMessage()]) == 1


def test_a_snapshot_of_another_store_is_ignored(built, tmp_path, caplog):
    """Same program, same key, other entries: the roots do not match."""
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    (snap,) = filled(built, a, n=6, snaps=(6,))
    with Running(built, b) as r:
        for i in range(6):
            r.move(f"m{i}", "ab"[i % 2], 100 + i)  # same keys, other amounts
    want = full_replay(built, b)
    shelf_dir(b).mkdir()
    (shelf_dir(b) / snap.name).write_bytes(snap.read_bytes())
    with caplog.at_level(logging.WARNING, logger="lwas"), Running(built, b) as r:
        assert r.svc.restored is None and observed(r.svc) == want
    (line,) = [rec.getMessage() for rec in caplog.records if "ignored" in rec.getMessage()]
    assert snap.name in line and "holds other entries than the snapshot" in line


def test_a_snapshot_from_another_key_is_refused(built, tmp_path, caplog):
    db = str(tmp_path / "l.db")
    (snap,) = filled(built, db, n=6, snaps=(6,))
    want = full_replay(built, db)
    h, _, body = split(snap.read_bytes())
    other_name = snapshot.key_name_for(OTHER.public_key())
    h["key"] = other_name
    snap.write_bytes(join(h, body, OTHER))  # a well-formed snapshot, signed by another key
    with caplog.at_level(logging.WARNING, logger="lwas"), Running(built, db) as r:
        assert r.svc.restored is None and observed(r.svc) == want
    (line,) = [rec.getMessage() for rec in caplog.records if "ignored" in rec.getMessage()]
    assert "signed by another key" in line and other_name in line and snap.name in line
    # served with that other key, the snapshot verifies, but the ledger is still not its own
    with pytest.raises(ValueError, match="ledger 'moves' is signed by another key"):
        Running(built, db, key=OTHER)


def test_a_snapshot_of_another_artifact_is_not_used_by_it(built, tmp_path, caplog):
    """A program upgrade: the new artifact replays once instead of trusting the old fold."""
    db = str(tmp_path / "l.db")
    (snap,) = filled(built, db, n=6, snaps=(6,))
    with caplog.at_level(logging.WARNING, logger="lwas"):
        with Running(built, db, digest=hashlib.sha512(b"v2").digest()) as r:
            assert r.svc.restored is None and r.svc.replayed == 6
    (line,) = [rec.getMessage() for rec in caplog.records if "ignored" in rec.getMessage()]
    assert "made by another artifact" in line


# ------------------------------------------------------------------------------ the store


def test_leaf_column_is_migrated_into_an_older_database(built, tmp_path):
    db = str(tmp_path / "l.db")
    with Running(built, db) as r:
        for i in range(7):
            r.move(f"m{i}")
        want = observed(r.svc)
    # make it look like a database of the previous runtime: no leaf column
    c = sqlite3.connect(db)
    c.executescript("""
        CREATE TABLE old AS SELECT ledger, seq, key, entry FROM entries;
        DROP TABLE entries;
        CREATE TABLE entries (ledger TEXT NOT NULL, seq BIGINT NOT NULL, key TEXT NOT NULL, entry BLOB NOT NULL,
                              PRIMARY KEY (ledger, seq), UNIQUE (ledger, key));
        INSERT INTO entries SELECT * FROM old;
        DROP TABLE old;
    """)
    c.close()
    with Running(built, db) as r:
        assert observed(r.svc) == want
        r.move("m7")
    c = sqlite3.connect(db)
    rows = c.execute("SELECT entry, leaf FROM entries ORDER BY seq").fetchall()
    c.close()
    assert len(rows) == 8 and all(leaf == leaf_hash(e) for e, leaf in rows)
    assert verify_store(db, built.key.public_key()).ok


def test_rows_without_a_leaf_hash_are_hashed_and_filled(built, tmp_path):
    """Rows an older runtime appended (leaf NULL), under a snapshot and after it."""
    db = str(tmp_path / "l.db")
    filled(built, db, n=10, snaps=(6,))
    want = full_replay(built, db)
    c = sqlite3.connect(db)
    c.execute("UPDATE entries SET leaf = NULL WHERE seq IN (2, 8)")
    c.commit()
    c.close()
    with Running(built, db) as r:
        assert r.svc.restored is not None and r.svc.restored.entries == 6
        assert observed(r.svc) == want
    c = sqlite3.connect(db)
    assert c.execute("SELECT count(*) FROM entries WHERE leaf IS NULL").fetchone()[0] == 1  # seq 8: tail, checked
    c.close()


def test_a_stored_leaf_hash_that_lies_is_caught(built, tmp_path):
    db = str(tmp_path / "l.db")
    filled(built, db, n=10, snaps=(6,))
    c = sqlite3.connect(db)
    c.execute("UPDATE entries SET leaf = ? WHERE seq = 8", (bytes(32),))  # in the tail
    c.commit()
    c.close()
    with pytest.raises(Exception, match="seq 8.*stored leaf hash is not the hash of the entry"):
        Running(built, db)


def test_an_altered_entry_under_the_newest_checkpoint_is_refused_at_start(built, tmp_path):
    db = str(tmp_path / "l.db")
    filled(built, db, n=10, snaps=(10,))
    c = sqlite3.connect(db)
    c.execute("UPDATE entries SET leaf = ? WHERE seq = 3", (hashlib.sha256(b"x").digest(),))
    c.commit()
    c.close()
    # the snapshot no longer matches the leaves, and a full replay finds the row's hash wrong
    with pytest.raises(Exception, match="seq 3"):
        Running(built, db)


def test_the_tree_can_be_rebuilt_from_its_levels():
    leaves = [leaf_hash(b"%d" % i) for i in range(77)]
    one = MerkleTree()
    for h in leaves:
        one.append(h)
    for size in range(78):
        bulk = MerkleTree(leaves[:size // 2])
        bulk.extend(b"".join(leaves[size // 2:size]))
        again = MerkleTree.from_levels(one.levels_at(size))
        assert bulk.root() == again.root() == one.root(size)
        assert bulk.levels == again.levels
    with pytest.raises(ValueError):
        MerkleTree.from_levels([b"".join(leaves[:4]), bytes(32)])  # level 1 of 4 leaves has 2 hashes


def test_postgres_keeps_snapshots_in_a_table(built, postgres_url):
    import psycopg

    name = "s_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.replace("/lwas?", f"/{name}?")
    with Running(built, url) as r:
        for i in range(9):
            r.move(f"m{i}", "ab"[i % 2], i)
        first = r.snap()
        r.note("n1", "hello")
        second = r.snap()
        r.move("m9")
        want = observed(r.svc)
    assert first != second
    with Running(built, url) as r:
        assert r.svc.restored.name == second and r.svc.replayed == 1
        assert observed(r.svc) == want
    st = open_store(url)
    try:
        assert len(st.snapshot_list("snaps")) == 2
        st.snapshot_prune("snaps", 1)
        assert st.snapshot_list("snaps") == [int(second.rsplit("-", 1)[1])]
    finally:
        st.close()
