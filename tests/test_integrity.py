"""Storage integrity and request isolation (issue 20, "Hardening"), on real SQLite files with real
Ed25519 signatures, in process and over real HTTP (`lwasc serve` on 127.0.0.1):

- start-time integrity (lwas.runtime.integrity): a changed byte in the last entry, in a middle
  entry, with or without its stored leaf hash recomputed, a row added or deleted behind the
  runtime's back, a damaged checkpoint signature: the start is refused naming the ledger, the
  entry (seq, key) and what does not match; entry bytes that are not the ones the tree holds are
  never served (a proof of them is refused);
- the database file deleted or replaced while serving: the next write is 503, /readyz is 503, and
  nothing is answered `created` into the unlinked file; a full disk makes /readyz 503; a missing
  database is created with a WARNING naming its path;
- isolation in group commit: requests whose values cannot be stored (a lone surrogate, an int
  outside 64 bits, a row the store refuses at commit) fail alone, the other requests of their
  batch succeed (200 concurrent valid requests among poisonous ones);
- a retry of an accepted request answers `exists` even when its guard would refuse it now,
  under concurrency.

Every server binds 127.0.0.1 only; every loop is bounded in count and time; thread pools are
bounded.
"""
from __future__ import annotations

import base64
import logging
import os
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256
from pathlib import Path

import httpx
import pytest

import helpers
from helpers import OFF
from lwas.backend import keys
from lwas.runtime import store as store_module
from lwas.runtime.host import GuardRefused, Outcome, Service, Unavailable, Unprocessable
from lwas.runtime.ledger import LedgerError
from lwas.runtime.snapshot import Policy
from lwas.runtime.store import open_store
from serving import _lwasc_cmd, free_port, isolated_env

SOURCE = """\
module shop

record Order {
  id: text
  item: text
  qty: int
  meta: json
}

rule in_stock(stock: int, qty: int) -> truth = stock >= qty

service shop {
  ledger orders: Order by id
  state stock: int = 50

  on orders(o) {
    state.stock -= o.qty
  }

  post "/orders" (o: Order) -> int requires in_stock(state.stock, o.qty) >= 1.0 {
    append orders(o)
    return state.stock
  }

  get "/stock" -> int {
    return state.stock
  }
}
"""

LEDGER = "orders"


class Built(helpers.Built):
    def __init__(self, home: Path):
        super().__init__(home, "shop", SOURCE)
        self.route = next(r for r in self.desc["routes"] if r["path"] == "/orders")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    return Built(tmp_path_factory.mktemp("shop"))


class Running(helpers.Running):
    """A started Service on its own SQLite store (snapshots as `policy` says)."""

    def order(self, id: str, qty: int = 1, item: str = "widget", meta: str = '{"n":1}'):
        return self.svc.call(self.b.route, ({"id": id, "item": item, "qty": qty, "meta": meta},))


def filled(b: Built, db, n: int, policy: Policy = OFF) -> None:
    """n orders, one batch each (a checkpoint per entry), then a clean stop."""
    with Running(b, db, policy) as r:
        for i in range(n):
            assert r.order(f"o{i}").ledger == "created"
        if policy is not OFF:
            assert r.svc.snapshots.write_now() is not None


def row(db, seq: int) -> tuple[str, bytes]:
    c = sqlite3.connect(db)
    try:
        key, data = c.execute("SELECT key, entry FROM entries WHERE ledger = ? AND seq = ?", (LEDGER, seq)).fetchone()
    finally:
        c.close()
    return key, bytes(data)


def alter(db, seq: int, recompute_leaf: bool) -> str:
    """Change one byte of entry seq's payload (widget -> wodget); the key of the entry."""
    key, data = row(db, seq)
    forged = data.replace(b"widget", b"wodget")
    assert forged != data and len(forged) == len(data)
    c = sqlite3.connect(db)
    if recompute_leaf:
        c.execute("UPDATE entries SET entry = ?, leaf = ? WHERE ledger = ? AND seq = ?",
                  (forged, sha256(b"\x00" + forged).digest(), LEDGER, seq))
    else:
        c.execute("UPDATE entries SET entry = ? WHERE ledger = ? AND seq = ?", (forged, LEDGER, seq))
    c.commit()
    c.close()
    return key


def sql(db, statement: str, args=()) -> None:
    c = sqlite3.connect(db)
    c.execute(statement, args)
    c.commit()
    c.close()


def refused(b: Built, db, policy: Policy = OFF) -> str:
    with pytest.raises(Exception) as info:
        Running(b, db, policy)
    return str(info.value)


# ------------------------------------------------------------------- 1. start-time integrity


@pytest.mark.parametrize("recompute_leaf", [False, True], ids=["leaf-kept", "leaf-recomputed"])
def test_a_changed_byte_in_the_last_entry_is_refused_at_start(built, tmp_path, recompute_leaf):
    db = str(tmp_path / "s.db")
    filled(built, db, 6)
    key = alter(db, 5, recompute_leaf)
    message = refused(built, db)
    assert "seq 5" in message and repr(key) in message, message
    if recompute_leaf:  # only the signed checkpoint can tell
        assert f"ledger {LEDGER!r}" in message and "does not match the newest signed checkpoint" in message
        assert "tree size 6" in message and "altered" in message
    else:
        assert "stored leaf hash is not the hash of the entry" in message


@pytest.mark.parametrize("recompute_leaf", [False, True], ids=["leaf-kept", "leaf-recomputed"])
def test_a_changed_byte_in_a_middle_entry_is_refused_at_start_naming_it(built, tmp_path, recompute_leaf):
    db = str(tmp_path / "s.db")
    filled(built, db, 8)
    key = alter(db, 3, recompute_leaf)
    message = refused(built, db)
    assert "seq 3" in message and repr(key) in message, message
    if recompute_leaf:  # the chain breaks at seq 4, whose own successor vouches for it: seq 3 changed
        assert "entry changed" in message and "entry 4" in message


def test_a_changed_last_entry_under_a_snapshot_is_refused(built, tmp_path):
    """The snapshot covers every entry: with the leaf recomputed, its signed leaf digest no longer
    holds (the start replays, and the checkpoint refuses); with the leaf kept, the start uses the
    snapshot but the forged bytes are never served."""
    db = str(tmp_path / "s.db")
    policy = Policy(every_entries=0, every_seconds=0, directory=str(tmp_path / "snaps"))
    filled(built, db, 5, policy)
    alter(db, 4, recompute_leaf=True)
    message = refused(built, db, policy)
    assert "seq 4" in message and "'o4'" in message and "newest signed checkpoint" in message, message

    db2 = str(tmp_path / "t.db")
    policy2 = Policy(every_entries=0, every_seconds=0, directory=str(tmp_path / "snaps2"))
    filled(built, db2, 5, policy2)
    alter(db2, 4, recompute_leaf=False)
    with Running(built, db2, policy2) as r:
        assert r.svc.restored is not None and r.svc.restored.entries == 5
        ledger = r.svc.by_name[LEDGER]
        with pytest.raises(LedgerError, match=r"seq 4 key 'o4'.*not the entry its Merkle tree holds"):
            ledger.proof("o4")
        with pytest.raises(Unavailable):  # a retry compared with forged bytes: not answered
            r.order("o4")
        assert ledger.proof("o3")["leaf_index"] == 3  # the others are served


def test_rows_added_or_deleted_behind_the_runtimes_back_are_refused(built, tmp_path):
    db = str(tmp_path / "s.db")
    filled(built, db, 4)
    sql(db, "DELETE FROM checkpoints WHERE ledger = ? AND tree_size = 4", (LEDGER,))
    message = refused(built, db)
    assert "seq 3, key 'o3' is not covered by the newest signed checkpoint (tree size 3)" in message, message

    sql(db, "DELETE FROM checkpoints WHERE ledger = ?", (LEDGER,))
    message = refused(built, db)
    assert "entries 0..3 are not covered by any signed checkpoint (first: seq 0, key 'o0')" in message, message

    db2 = str(tmp_path / "t.db")
    filled(built, db2, 4)
    sql(db2, "DELETE FROM entries WHERE ledger = ? AND seq = 3", (LEDGER,))
    message = refused(built, db2)
    assert "covers 4 entries but the store holds 3: entries 3..3 were deleted" in message, message


def test_a_damaged_or_foreign_checkpoint_signature_says_which(built, tmp_path):
    db = str(tmp_path / "s.db")
    filled(built, db, 3)
    c = sqlite3.connect(db)
    (note,) = c.execute("SELECT note FROM checkpoints WHERE ledger = ? AND tree_size = 3", (LEDGER,)).fetchone()
    c.close()
    body, sig = note.split("\n\n")
    dash, name, blob = sig.strip("\n").split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[10] ^= 1  # a byte of the Ed25519 signature (after the 4-byte key hash)
    damaged = f"{body}\n\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"
    sql(db, "UPDATE checkpoints SET note = ? WHERE ledger = ? AND tree_size = 3", (damaged, LEDGER))
    message = refused(built, db)
    assert "signature of its newest checkpoint (tree size 3)" in message and "does not verify" in message, message
    assert "another key" not in message

    db2 = str(tmp_path / "t.db")
    filled(built, db2, 3)
    with pytest.raises(ValueError, match="signed by another key"):
        Running(built, db2, key=keys.generate())


def test_an_untouched_ledger_starts_and_appends(built, tmp_path):
    db = str(tmp_path / "s.db")
    filled(built, db, 3)
    with Running(built, db) as r:
        assert r.order("o3").ledger == "created"
        assert r.svc.read(next(x for x in built.desc["routes"] if x["path"] == "/stock"), ()) == 46


def test_lwasc_serve_refuses_a_forged_last_entry_before_serving(built, tmp_path):
    db = str(tmp_path / "s.db")
    filled(built, db, 4)
    alter(db, 3, recompute_leaf=True)
    home = tmp_path / "home"
    home.mkdir()
    cmd = [*_lwasc_cmd(), "serve", str(built.art_path), "--db", db, "--host", "127.0.0.1",
           "--port", str(free_port()), "--key", str(built.key_path), "--pubkey", str(built.pub_path)]
    r = subprocess.run(cmd, env=isolated_env(home), capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "seq 3, key 'o3' does not match the newest signed checkpoint" in out, out
    assert "Traceback" not in out


# ------------------------------------------------------------- 2. the database file itself


def test_a_missing_database_is_created_with_a_warning(tmp_path, caplog):
    db = tmp_path / "new.db"
    with caplog.at_level(logging.WARNING, logger="lwas.store"):
        open_store(str(db)).close()
        open_store(str(db)).close()  # exists now: no second warning
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "does not exist" in r.getMessage()]
    assert len(warnings) == 1 and str(db) in warnings[0].getMessage()
    assert db.exists()


def test_a_deleted_or_replaced_database_fails_writes_and_readiness(built, tmp_path):
    for how in ("delete", "replace"):
        db = str(tmp_path / f"{how}.db")
        with Running(built, db) as r:
            assert r.store.ping() and r.order("a").ledger == "created"
            if how == "delete":
                os.unlink(db)
            else:
                other = tmp_path / f"{how}-other.db"
                open_store(str(other)).close()
                os.replace(other, db)
            assert not r.store.ping()
            assert "deleted" in r.store.problem() if how == "delete" else "replaced" in r.store.problem()
            with pytest.raises(Unavailable):
                r.order("b")
            assert r.svc.by_name[LEDGER].size == 1  # nothing moved in memory either


def test_a_full_disk_is_not_ready(tmp_path, monkeypatch):
    s = open_store(str(tmp_path / "s.db"))
    try:
        assert s.ping()
        real = os.statvfs

        class Full:
            def __init__(self, st):
                self.f_frsize, self.f_bavail = st.f_frsize, 1

        monkeypatch.setattr(store_module.os, "statvfs", lambda p: Full(real(p)))
        assert not s.ping() and "disk" in s.problem() and "full" in s.problem()
    finally:
        s.close()


def test_serving_a_deleted_database_answers_503_and_not_ready(built, tmp_path):
    db = tmp_path / "served.db"
    order = {"id": "h1", "item": "widget", "qty": 1, "meta": {"n": 1}}
    with built.serve(db, tmp_path / "home") as server, httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.post("/orders", json=order, headers=server.auth).status_code == 200
        os.unlink(db)
        r = http.post("/orders", json={**order, "id": "h2"}, headers=server.auth)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable"
        assert http.get("/readyz").status_code == 503
        assert "was deleted while in use" in server.log_text()


def test_lwasc_serve_warns_when_it_creates_the_database(built, tmp_path):
    db = tmp_path / "fresh.db"
    with built.serve(db, tmp_path / "home") as server:
        assert db.exists()
        deadline = time.monotonic() + 10
        while "does not exist" not in server.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "does not exist: creating an empty one" in server.log_text()
        assert str(db) in server.log_text()


# ---------------------------------------------------------- 3. isolation in group commit


def _submit_all(svc: Service, route: dict, bodies: list[dict], timeout: float = 60.0) -> list:
    """Queue every request at once (so the writer batches them); their results in order."""
    results: list = [None] * len(bodies)
    left = threading.Semaphore(0)

    def done_for(i):
        def done(r):
            results[i] = r
            left.release()
        return done

    for i, body in enumerate(bodies):
        svc.submit(route, (body,), done_for(i))
    deadline = time.monotonic() + timeout
    for _ in bodies:
        assert left.acquire(timeout=max(0.1, deadline - time.monotonic())), "the writer did not answer in time"
    return results


POISON = [
    {"id": "p-key-\ud800", "item": "widget", "qty": 0, "meta": "{}"},  # a key SQLite cannot bind
    {"id": "p-meta", "item": "widget", "qty": 0, "meta": '{"s":"\ud800"}'},  # json text with a lone surrogate
    {"id": "p-item", "item": "wid\udfffget", "qty": 0, "meta": "{}"},
    {"id": "p-big", "item": "widget", "qty": 2 ** 63, "meta": "{}"},  # not an int64
    {"id": "p-neg", "item": "widget", "qty": -(2 ** 63) - 1, "meta": "{}"},
]


def test_poisonous_requests_fail_alone_in_their_group_commit(built, tmp_path):
    db = str(tmp_path / "s.db")
    with Running(built, db) as r:
        valid = [{"id": f"v{i}", "item": "widget", "qty": 0, "meta": '{"i":%d}' % i} for i in range(200)]
        bodies = valid[:]
        for i, p in enumerate(POISON):  # spread among the valid ones
            bodies.insert(20 + 37 * i, p)
        results = _submit_all(r.svc, built.route, bodies)
        for body, res in zip(bodies, results):
            if body in POISON:
                assert isinstance(res, Unprocessable), (body, res)
                assert res.status == 422 and "cannot be stored" in str(res)
            else:
                assert isinstance(res, Outcome) and res.ledger == "created", (body, res)
        assert r.svc.by_name[LEDGER].size == 200
    with Running(built, db) as again:  # what was answered is what was stored
        assert again.svc.by_name[LEDGER].size == 200


class _Refusing:
    """A store whose commit refuses rows with a key starting with "boom" (as a driver refuses a
    value it cannot bind), to prove a batch that fails at commit is retried in halves."""

    def __init__(self, inner):
        self.inner = inner
        self.transactions = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def transaction(self):
        outer = self
        inner_cm = self.inner.transaction()

        class _Cm:
            def __enter__(self):
                outer.transactions += 1
                tx = inner_cm.__enter__()
                append = tx.append_many

                def append_many(ledger, rows):
                    rows = list(rows)
                    if any(r[1].startswith("boom") for r in rows):
                        raise sqlite3.InterfaceError("Error binding parameter 2: type not supported")
                    append(ledger, rows)
                tx.append_many = append_many
                return tx

            def __exit__(self, *exc):
                return inner_cm.__exit__(*exc)

        return _Cm()


def test_a_batch_refused_at_commit_is_retried_in_halves(built, tmp_path):
    db = str(tmp_path / "s.db")
    store = _Refusing(open_store(db))
    with Running(built, db, store=store) as r:
        before = store.transactions
        bodies = [{"id": f"v{i}", "item": "widget", "qty": 0, "meta": "{}"} for i in range(64)]
        bodies.insert(41, {"id": "boom", "item": "widget", "qty": 0, "meta": "{}"})
        results = _submit_all(r.svc, built.route, bodies)
        for body, res in zip(bodies, results):
            if body["id"] == "boom":
                assert isinstance(res, Unprocessable), res
            else:
                assert isinstance(res, Outcome) and res.ledger == "created", (body, res)
        assert r.svc.by_name[LEDGER].size == 64
        assert store.transactions - before <= 2 * 65  # bounded: halves, not one per job each time


def test_poisonous_posts_among_200_concurrent_valid_ones_over_http(built, tmp_path):
    db = tmp_path / "served.db"
    raw_poison = [
        b'{"id":"p1","item":"widget","qty":0,"meta":{"s":"\\ud800"}}',
        b'{"id":"p2\\ud800","item":"widget","qty":0,"meta":{}}',
        b'{"id":"p3","item":"wid\\udfffget","qty":0,"meta":{}}',
        b'{"id":"p4","item":"widget","qty":9223372036854775808,"meta":{}}',
        b'{"id":"p5","item":"widget","qty":0,"meta":{"s":"\\udc00x"}}',
    ]
    valid = [('{"id":"v%d","item":"widget","qty":0,"meta":{"i":%d}}' % (i, i)).encode() for i in range(200)]
    bodies = valid[:]
    for i, p in enumerate(raw_poison):
        bodies.insert(10 + 40 * i, p)
    with built.serve(db, tmp_path / "home") as server, httpx.Client(base_url=server.url, timeout=30) as http:
        headers = {**server.auth, "Content-Type": "application/json"}

        def post(body: bytes):
            return body, http.post("/orders", content=body, headers=headers)

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(post, bodies, timeout=120))
        statuses = {}
        for body, r in answers:
            if body in raw_poison:
                assert 400 <= r.status_code < 500, (body, r.status_code, r.text)  # refused before or in the writer
                assert r.headers.get("content-type", "").startswith("application/json")
            else:
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                assert r.status_code == 200 and r.headers["lwas-ledger"] == "created", (body, r.status_code, r.text)
        assert statuses == {200: 200}
        assert http.get("/readyz").status_code == 200


# ---------------------------------------------------- 4. a retry answers as a retry


def test_a_retry_after_the_stock_ran_out_answers_exists(built, tmp_path):
    db = str(tmp_path / "s.db")
    with Running(built, db) as r:
        first = [{"id": f"o{i}", "item": "widget", "qty": 1, "meta": '{"i":%d}' % i} for i in range(80)]
        results = _submit_all(r.svc, built.route, first)
        accepted = [b for b, res in zip(first, results) if isinstance(res, Outcome)]
        refused_ = [b for b, res in zip(first, results) if isinstance(res, GuardRefused)]
        assert len(accepted) == 50 and len(refused_) == 30  # the stock ran out at 50
        assert all(res.ledger == "created" for res in results if isinstance(res, Outcome))
        # retries of every accepted order, mixed with new orders and retries of refused ones,
        # from several threads at once
        again = accepted + refused_ + [{"id": f"n{i}", "item": "widget", "qty": 1, "meta": "{}"} for i in range(20)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            outs = list(pool.map(lambda b: _call(r.svc, built.route, b), again, timeout=60))
        for body, res in zip(again, outs):
            if body in accepted:
                assert isinstance(res, Outcome) and res.ledger == "exists" and res.response == 0, (body, res)
            else:
                assert isinstance(res, GuardRefused), (body, res)
        # a retry with other content is not a retry: the guard (or the conflict) decides
        res = _call(r.svc, built.route, {**accepted[0], "item": "gadget"})
        assert isinstance(res, GuardRefused)
        assert r.svc.by_name[LEDGER].size == 50


def test_a_retry_in_the_same_batch_as_its_original_answers_exists(built, tmp_path):
    db = str(tmp_path / "s.db")
    with Running(built, db) as r:
        big = {"id": "all", "item": "widget", "qty": 50, "meta": "{}"}  # takes the whole stock
        results = _submit_all(r.svc, built.route, [big, dict(big), dict(big)])
        assert [res.ledger for res in results] == ["created", "exists", "exists"], results


def _call(svc, route, body):
    try:
        return svc.call(route, (body,))
    except Exception as e:  # noqa: BLE001 - the answer is what the test looks at
        return e


def test_retries_over_http_answer_exists_after_the_stock_ran_out(built, tmp_path):
    db = tmp_path / "served.db"
    orders = [{"id": f"h{i}", "item": "widget", "qty": 5, "meta": {"i": i}} for i in range(14)]
    with built.serve(db, tmp_path / "home") as server, httpx.Client(base_url=server.url, timeout=30) as http:
        def post(body):
            return http.post("/orders", json=body, headers=server.auth)

        with ThreadPoolExecutor(max_workers=8) as pool:
            first = list(pool.map(post, orders, timeout=60))
            codes = sorted(r.status_code for r in first)
            assert codes == [200] * 10 + [422] * 4, codes
            accepted = [o for o, r in zip(orders, first) if r.status_code == 200]
            retries = list(pool.map(post, accepted * 3, timeout=60))
        for r in retries:
            assert r.status_code == 200 and r.headers["lwas-ledger"] == "exists", r.text
            assert r.json() == 0


def test_a_ledger_key_over_256_bytes_is_refused_alone_at_append(built, tmp_path):
    """The server bounds keys taken from a body field; the runtime bounds every key, however a
    handler built it (here: the in-process call skips the server's check)."""
    with Running(built, tmp_path / "keys.db") as r:
        assert isinstance(r.order("k" * 256), Outcome)  # 256 bytes: the most a key may have
        with pytest.raises(Unprocessable, match="at most 256 bytes"):
            r.order("é" * 129)  # 258 bytes of UTF-8
        assert isinstance(r.order("next"), Outcome)
        assert r.svc.ledgers[0].size == 2
