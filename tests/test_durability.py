"""Durability of served ledgers, end to end: real `lwasc serve` processes, real HTTP, real stores.

- crash: SIGKILL the server under write load, 20 times, on one SQLite file; nothing that was
  acknowledged with 200 is lost, nothing that was never sent appears, the chain verifies, and the
  replayed state equals the fold of the ledger.
- two server processes on one PostgreSQL ledger, and one server with `--workers 2` on one SQLite
  file: concurrent retries of the same id are applied exactly once across processes.
- tampering with a served ledger's rows is caught by `lwasc ledger verify`, which names the entry.

Every server binds 127.0.0.1 only (tests/serving.py); every loop is bounded in count and time.
"""
from __future__ import annotations

import base64
import random
import shutil
import threading
import time
import uuid
from hashlib import sha256
from pathlib import Path

import httpx
import pytest

from helpers import BANK, run_sql
from lwas.backend.keys import load_public
from lwas.runtime.ledger import HEADER, decode_entry, decode_value, encode_entry, encode_value
from lwas.runtime.loader import check
from lwas.runtime.store import open_store
from lwas.runtime.values import Money
from lwas.runtime.verify import verify_store
from postgres import postgres_url  # noqa: F401  (session fixture: a throwaway PostgreSQL cluster)
from serving import GRACEFUL, lwasc, served

LEDGER = "transfers"


class Bank:
    """The built, signed artifact of examples/bank.lwas and the key pair that signs it."""

    def __init__(self, home: Path):
        self.home = home
        self.key = home / "signing.pem"
        self.pub = home / "signing.pem.pub"
        self.art = home / "bank.lwasart"
        r = lwasc("keygen", self.key, home=home)
        assert r.returncode == 0, r.stderr
        r = lwasc("build", BANK, "-o", self.art, "--key", self.key, home=home)
        assert r.returncode == 0, r.stderr
        self.public_key = load_public(self.pub)
        manifest = check(self.art.read_bytes(), [self.public_key]).manifest
        (svc,) = manifest["services"]
        (spec,) = svc["ledgers"]
        assert spec["name"] == LEDGER and spec["key"] == "id"
        self.entry_desc = spec["entry"]

    def serve(self, db, **kw):
        return served(self.art, db=str(db), key=self.key, pubkey=self.pub, home=self.home, **kw)

    def rows(self, url) -> list[tuple[int, str, bytes, dict]]:
        """Every stored row of the ledger, in seq order, with its decoded Transfer."""
        store = open_store(str(url))
        try:
            return [(seq, key, data, decode_value(self.entry_desc, decode_entry(data).payload))
                    for seq, key, data in store.read(LEDGER)]
        finally:
            store.close()


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Bank:
    return Bank(tmp_path_factory.mktemp("bank"))


# ------------------------------------------------------------------------------------ helpers


def make_transfer(tid: str, rng: random.Random) -> dict:
    minor = rng.randint(1, 99_999)  # 0.01 .. 999.99 USD (plausible(t) holds)
    kind = "Withdrawal" if rng.random() < 0.3 else "Deposit"
    return {"id": tid, "account": f"acct-{rng.randint(1, 5)}",
            "amount": {"amount": f"{minor // 100}.{minor % 100:02d}", "currency": "USD"}, "kind": kind}


def minor_of(body: dict) -> int:
    units, frac = body["amount"]["amount"].split(".")
    return int(units) * 100 + int(frac)


def signed_minor(body: dict) -> int:
    return minor_of(body) if body["kind"] == "Deposit" else -minor_of(body)


def money_json(minor: int) -> dict:
    sign = "-" if minor < 0 else ""
    units, frac = divmod(abs(minor), 100)
    return {"amount": f"{sign}{units}.{frac:02d}", "currency": "USD", "minor": minor}


def summary_of(bodies) -> dict:
    bodies = list(bodies)
    return {"balance": money_json(sum(signed_minor(b) for b in bodies)), "count": len(bodies),
            "deposits": sum(1 for b in bodies if b["kind"] == "Deposit")}


def as_transfer(body: dict) -> dict:
    """The value the ledger must hold for a request body (what decode_value returns)."""
    return {"id": body["id"], "account": body["account"], "amount": Money(minor_of(body), "USD"),
            "kind": body["kind"]}


def poll(fn, timeout: float, interval: float = 0.1):
    """fn() until it returns a truthy value or `timeout` passes (bounded in count and time); the
    last value."""
    deadline = time.monotonic() + timeout
    value = None
    for _ in range(int(timeout / interval) + 2):
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
    return value


def post_all(url: str, auth: dict, bodies: list[dict], out: list, deadline: float,
             keepalive: bool = True) -> None:
    """POST each body to /transfers; append (id, status, LwaS-Ledger header, json) to `out`."""
    limits = None if keepalive else httpx.Limits(max_keepalive_connections=0)
    kw = {"limits": limits} if limits else {}
    with httpx.Client(base_url=url, headers=auth, timeout=30.0, **kw) as c:
        for body in bodies:
            if time.monotonic() > deadline:
                out.append((body["id"], "deadline", None, None))
                return
            r = c.post("/transfers", json=body)
            out.append((body["id"], r.status_code, r.headers.get("lwas-ledger"), r.json()))


def run_threads(targets: list, timeout: float) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "client threads did not finish in time"


def summary(url: str) -> dict:
    with httpx.Client(timeout=10.0) as c:
        r = c.get(url + "/summary")
    assert r.status_code == 200, r.text
    return r.json()


def assert_exactly_once(results: list, ids: list[str]) -> None:
    """Every response 200 with the receipt of its id; per id exactly one `created`, the rest
    `exists` (idempotent retries)."""
    created: dict[str, int] = {i: 0 for i in ids}
    for tid, status, ledger, body in results:
        assert status == 200, (tid, status, body)
        assert body["id"] == tid
        assert ledger in ("created", "exists"), (tid, ledger)
        created[tid] += ledger == "created"
    assert {i: n for i, n in created.items() if n != 1} == {}


# ------------------------------------------------------------------------------------ 1. crash

ROUNDS = 20
CLIENTS = 3


def test_sigkill_under_load_loses_no_acknowledged_transfer(bank, tmp_path):
    """20 x (serve the same SQLite file, write as fast as possible from 3 clients, SIGKILL after
    a random 0.05-0.6 s). Every 200 is on disk after the crash with exactly the content sent and
    at the position its receipt claimed; unacknowledged requests may be present (the crash can
    fall between commit and reply) but nothing never sent is; after each crash the file verifies
    as it is (chain and signatures); finally the replayed server serves a proof for every 200,
    its /summary is the fold of all stored entries, and `lwasc ledger verify` exits 0."""
    t0 = time.monotonic()
    db = tmp_path / "crash.db"
    rng = random.Random(0xC0FFEE)
    lock = threading.Lock()
    sent: dict[str, dict] = {}  # id -> body, for every request put on the wire
    acked: dict[str, tuple[dict, dict]] = {}  # id -> (body, receipt) for every 200
    unexpected: list = []

    def client(url: str, auth: dict, rnd: int, j: int, stop: threading.Event) -> None:
        crng = random.Random(rnd * 1000 + j)
        deadline = time.monotonic() + 10.0
        with httpx.Client(base_url=url, headers=auth, timeout=5.0) as c:
            for i in range(20_000):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                body = make_transfer(f"r{rnd:02d}-c{j}-{i:05d}", crng)
                with lock:
                    sent[body["id"]] = body
                try:
                    r = c.post("/transfers", json=body)
                except httpx.TransportError:
                    return  # the server is gone: this request's fate is unknown
                if r.status_code != 200 or r.headers.get("lwas-ledger") != "created" \
                        or r.json().get("id") != body["id"]:
                    with lock:
                        unexpected.append((body["id"], r.status_code, r.text))
                    return
                with lock:
                    acked[body["id"]] = (body, r.json())

    for rnd in range(ROUNDS):
        with bank.serve(db) as srv:
            stop = threading.Event()
            threads = [threading.Thread(target=client, args=(srv.url, srv.auth, rnd, j, stop), daemon=True)
                       for j in range(CLIENTS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.05, 0.6))
            srv.crash()
            stop.set()
            for t in threads:
                t.join(15)
            assert not any(t.is_alive() for t in threads)
        assert unexpected == [], unexpected[:5]
        # after every crash, as the crash left it: one unbroken chain, every entry signed (each
        # batch commits with its checkpoint, so there is no unsigned tail to explain away)
        report = verify_store(str(db), bank.public_key)
        assert report.ok, f"round {rnd}: {report.text()}"

    assert len(acked) >= 100, f"only {len(acked)} acknowledged writes in {ROUNDS} rounds"
    rows = bank.rows(db)
    stored = {key: (seq, value) for seq, key, _, value in rows}
    assert [seq for seq, *_ in rows] == list(range(len(rows)))
    assert len(stored) == len(rows)

    # nothing acknowledged is lost, and each holds exactly what was sent, where its receipt said
    prefix, running = [], 0
    for _, _, _, value in rows:
        running += value["amount"].minor if value["kind"] == "Deposit" else -value["amount"].minor
        prefix.append(running)
    missing = sorted(set(acked) - set(stored))
    assert missing == [], f"{len(missing)} acknowledged transfers lost, e.g. {missing[:5]}"
    for tid, (body, receipt) in acked.items():
        seq, value = stored[tid]
        assert value == as_transfer(body)
        assert receipt["count"] == seq + 1, (tid, receipt, seq)
        assert receipt["balance"] == money_json(prefix[seq]), (tid, receipt, seq)
    # anything else stored was at least sent, with that content (in flight at the crash)
    phantoms = sorted(set(stored) - set(sent))
    assert phantoms == []
    for tid in set(stored) - set(acked):
        assert stored[tid][1] == as_transfer(sent[tid])

    with bank.serve(db) as srv:
        with httpx.Client(base_url=srv.url, timeout=10.0) as c:
            for tid in acked:  # (a) every acknowledged transfer is served with its proof
                r = c.get(f"/ledger/{LEDGER}/proof/{tid}")
                assert r.status_code == 200, (tid, r.text)
                p = r.json()
                entry = base64.b64decode(p["entry"])
                assert tid.encode() in entry
                assert decode_entry(entry).key == tid and p["leaf_index"] == stored[tid][0]
                assert p["leaf_hash"] == sha256(b"\x00" + entry).hexdigest()
                assert p["tree_size"] == len(rows)
            # (c) the replayed state is the fold of every stored entry (acknowledged or not)
            expected = {"balance": money_json(prefix[-1]), "count": len(rows),
                        "deposits": sum(1 for *_, v in rows if v["kind"] == "Deposit")}
            assert c.get("/summary").json() == expected
            assert expected["count"] == len(rows) >= len(acked)
        # (b) `lwasc ledger verify` accepts the file while the replayed server runs on it
        r = lwasc("ledger", "verify", db, "--pubkey", bank.pub, home=bank.home)
        assert r.returncode == 0, r.stdout + r.stderr
        assert srv.stop() in GRACEFUL
    r = lwasc("ledger", "verify", db, "--pubkey", bank.pub, home=bank.home)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(rows)} entries" in r.stdout
    print(f"\ncrash: {len(acked)} acked, {len(rows) - len(acked)} unacked but stored, "
          f"{len(sent) - len(rows)} lost in flight; {time.monotonic() - t0:.1f} s")
    assert time.monotonic() - t0 < 90


def test_ledger_verifies_right_after_a_crash(bank, tmp_path):
    """SIGKILL right after a burst of acknowledged writes: the file as the crash left it passes
    `lwasc ledger verify` (regression: checkpoints used to be stored up to 1 s after their entries,
    so a crash left an 'unsigned (forged?)' tail on an honest ledger)."""
    db = tmp_path / "tail.db"
    rng = random.Random(5)
    with bank.serve(db) as srv:
        out: list = []
        t0 = time.monotonic()
        post_all(srv.url, srv.auth, [make_transfer(f"tail-{i:02d}", rng) for i in range(20)], out,
                 t0 + 30)
        srv.crash()
    assert len(out) == 20 and all(s == 200 for _, s, _, _ in out)
    assert verify_store(str(db), bank.public_key, allow_unsigned_tail=True).ok  # the chain is fine
    code, text = _verify_cli(bank, db)
    assert code == 0 and "20 entries" in text, text


def test_idle_processes_sharing_a_ledger_log_no_failures(bank, tmp_path):
    """Two `lwasc serve` processes on one SQLite file, one write, 3 s idle: no process logs a
    failure (regression: idle processes raced to store the same checkpoint, and every loser
    logged 'catch-up failed: UNIQUE constraint failed' every 0.5 s, forever)."""
    db = tmp_path / "shared.db"
    with bank.serve(db) as a, bank.serve(db) as b:
        out: list = []
        post_all(a.url, a.auth, [make_transfer("only", random.Random(6))], out, time.monotonic() + 30)
        assert out[0][1] == 200
        time.sleep(3.0)
        logs = a.log_text() + b.log_text()
        assert verify_store(str(db), bank.public_key).ok
    # the one expected warning: the first process created the database (said loudly, lwas.runtime.store)
    assert logs.count("does not exist: creating an empty one") <= 1
    logs = "\n".join(line for line in logs.splitlines() if "does not exist: creating an empty one" not in line)
    assert '"level": "warning"' not in logs and '"level": "error"' not in logs, logs[-1500:]


# ---------------------------------------------------------------- 2. two processes on PostgreSQL


@pytest.fixture
def fresh_pg_url(postgres_url):  # noqa: F811
    """A database of its own in the session's cluster (other tests may use the default one)."""
    import psycopg

    name = f"durability_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    assert "/lwas?" in postgres_url
    yield postgres_url.replace("/lwas?", f"/{name}?", 1)


def test_two_servers_share_one_postgres_ledger(bank, fresh_pg_url):
    """Two `lwasc serve` processes on one PostgreSQL ledger, 2 clients each, 200 distinct ids of
    which 40 are also sent, identically, to the other server at the same time: each id is applied
    exactly once (one `created`, otherwise `exists`), the store verifies, holds each id once with
    its content, and both servers' /summary converge on the fold of the 200 transfers."""
    rng = random.Random(2)
    bodies = [make_transfer(f"pg-{i:03d}", rng) for i in range(200)]
    lists: list[list[dict]] = [[] for _ in range(4)]  # client j talks to server j // 2
    for i, b in enumerate(bodies):
        lists[i % 4].append(b)
        if i % 5 == 0:
            lists[(i % 4 + 2) % 4].append(b)  # the same request to the other server
    results: list = []
    with bank.serve(fresh_pg_url) as a, bank.serve(fresh_pg_url) as b:
        servers = [a, a, b, b]
        deadline = time.monotonic() + 60
        outs = [[] for _ in range(4)]
        run_threads([lambda j=j: post_all(servers[j].url, servers[j].auth, lists[j], outs[j], deadline)
                     for j in range(4)], timeout=70)
        for o in outs:
            results.extend(o)
        assert len(results) == 240
        assert_exactly_once(results, [b["id"] for b in bodies])

        expected = summary_of(bodies)
        agree = poll(lambda: summary(a.url) == expected and summary(b.url) == expected, timeout=10.0)
        assert agree, (summary(a.url), summary(b.url), expected)
        report = verify_store(fresh_pg_url, bank.public_key)  # while both still serve it
        assert report.ok and report.entries == 200, report.text()
        assert a.stop() in GRACEFUL and b.stop() in GRACEFUL
    report = verify_store(fresh_pg_url, bank.public_key)
    assert report.ok and report.entries == 200, report.text()
    rows = bank.rows(fresh_pg_url)
    assert [seq for seq, *_ in rows] == list(range(200))
    assert sorted(key for _, key, _, _ in rows) == sorted(b["id"] for b in bodies)
    by_id = {b["id"]: b for b in bodies}
    for _, key, _, value in rows:
        assert value == as_transfer(by_id[key])


# --------------------------------------------------------------- 3. --workers 2 on one SQLite file


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_two_workers_on_one_sqlite_file_apply_retries_once(bank, tmp_path):
    """`--workers 2`: two uvicorn worker processes share one SQLite ledger. 4 clients without
    keep-alive (so requests spread over both workers) each send the same 40 transfers in
    different orders: every id is applied once, the ledger holds 40 entries, verifies, and both
    workers' /summary converge on the fold of the 40."""
    db = tmp_path / "workers.db"
    rng = random.Random(3)
    bodies = [make_transfer(f"w-{i:02d}", rng) for i in range(40)]
    orders = []
    for j in range(4):
        o = list(bodies)
        random.Random(30 + j).shuffle(o)
        orders.append(o)
    with bank.serve(db, workers=2) as srv:
        workers = poll(lambda: len([c for c in _children(srv.proc.pid) if b"spawn_main" in _cmdline(c)]) == 2,
                       timeout=10.0)
        assert workers, f"expected 2 worker processes under {srv.proc.pid}: {_children(srv.proc.pid)}"
        deadline = time.monotonic() + 60
        outs = [[] for _ in range(4)]
        run_threads([lambda j=j: post_all(srv.url, srv.auth, orders[j], outs[j], deadline, keepalive=False)
                     for j in range(4)], timeout=70)
        results = [r for o in outs for r in o]
        assert len(results) == 160
        assert_exactly_once(results, [b["id"] for b in bodies])
        expected = summary_of(bodies)
        # each GET opens a new connection, so consecutive reads land on either worker
        converged = poll(lambda: all(summary(srv.url) == expected for _ in range(8)), timeout=10.0)
        assert converged, (summary(srv.url), expected)
        report = verify_store(str(db), bank.public_key)  # while both workers still serve it
        assert report.ok and report.entries == 40, report.text()
        assert srv.stop() in GRACEFUL
    rows = bank.rows(db)
    assert [seq for seq, *_ in rows] == list(range(40))
    assert sorted(k for _, k, _, _ in rows) == sorted(b["id"] for b in bodies)
    r = lwasc("ledger", "verify", db, "--pubkey", bank.pub, home=bank.home)
    assert r.returncode == 0, r.stdout + r.stderr


# ------------------------------------------------------------------------------- 4. tampering


def _copy_db(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal"):
        if Path(str(src) + suffix).exists():
            shutil.copyfile(str(src) + suffix, str(dst) + suffix)
    return dst


@pytest.fixture(scope="module")
def served_ledger(bank, tmp_path_factory):
    """A ledger written by a real server: 50 transfers from 2 clients, then a graceful stop (the
    final checkpoint signs all 50). (db path, rows)."""
    db = tmp_path_factory.mktemp("served") / "served.db"
    rng = random.Random(4)
    bodies = [make_transfer(f"tx-{i:03d}", rng) for i in range(50)]
    with bank.serve(db) as srv:
        out: list = []
        deadline = time.monotonic() + 60
        run_threads([lambda: post_all(srv.url, srv.auth, bodies[:25], out, deadline),
                     lambda: post_all(srv.url, srv.auth, bodies[25:], out, deadline)], timeout=70)
        assert len(out) == 50 and all(s == 200 and h == "created" for _, s, h, _ in out), out[:3]
        assert srv.stop() in GRACEFUL
    rows = bank.rows(db)
    assert len(rows) == 50
    return db, rows


def _verify_cli(bank, path: Path) -> tuple[int, str]:
    r = lwasc("ledger", "verify", path, "--pubkey", bank.pub, home=bank.home)
    return r.returncode, r.stdout + r.stderr


def _flip_payload_byte(db: Path, rows, bank: Bank) -> str:
    data = rows[20][2]  # its last byte lies inside the Kind variant name
    run_sql(db, ("UPDATE entries SET entry = ? WHERE ledger = ? AND seq = ?",
              (data[:-1] + bytes([data[-1] ^ 0x01]), LEDGER, 20)))
    # entry 20 is named (not 21, whose prev hash no longer matches): by the chain ("entry changed")
    # or, when a batch's checkpoint ends at it, by the signed Merkle root ("... were rewritten")
    return f"seq 20 key '{rows[20][1]}': "


def _delete_row(db: Path, rows, bank: Bank) -> str:
    run_sql(db, ("DELETE FROM entries WHERE ledger = ? AND seq = ?", (LEDGER, 30)))
    return f"seq 31 key '{rows[31][1]}': entries missing before it: expected seq 30"


def _swap_seqs(db: Path, rows, bank: Bank) -> str:
    run_sql(db, ("UPDATE entries SET seq = -1 WHERE ledger = ? AND seq = 10", (LEDGER,)),
         ("UPDATE entries SET seq = 10 WHERE ledger = ? AND seq = 11", (LEDGER,)),
         ("UPDATE entries SET seq = 11 WHERE ledger = ? AND seq = -1", (LEDGER,)))
    return f"seq 10 key '{rows[11][1]}': entry bytes carry seq 11"  # seq 10 now holds entry 11's row


def _forge_row(db: Path, rows, bank: Bank) -> str:
    """Append a row that continues the chain correctly: only the signature can reject it."""
    last = decode_entry(rows[-1][2])
    payload = encode_value(bank.entry_desc, {"id": "forged", "account": "mallory",
                                             "amount": Money(99_999_999, "USD"), "kind": "Deposit"})
    forged = encode_entry(50, last.time_micros + 1, last.artifact, sha256(b"\x00" + rows[-1][2]).digest(),
                          "forged", payload)
    run_sql(db, ("INSERT INTO entries (ledger, seq, key, entry) VALUES (?, ?, ?, ?)",
              (LEDGER, 50, "forged", forged)))
    return "seq 50 key 'forged': entries 50..50 are not covered by any signed checkpoint"


@pytest.mark.parametrize("tamper", [
    pytest.param(_flip_payload_byte, id="payload-byte"),
    pytest.param(_delete_row, id="deleted-row"),
    pytest.param(_swap_seqs, id="swapped-seq"),
    pytest.param(_forge_row, id="forged-row"),
])
def test_cli_verify_names_the_tampered_entry(bank, served_ledger, tmp_path, tamper):
    """On a copy of a served ledger altered with raw SQL, `lwasc ledger verify` exits 1 and names
    the first bad entry by seq and key (and why); the original still exits 0."""
    db, rows = served_ledger
    copy = _copy_db(db, tmp_path / "copy.db")
    expected = tamper(copy, rows, bank)
    code, text = _verify_cli(bank, copy)
    assert code == 1, text
    assert text.startswith("TAMPERED: ledger 'transfers' "), text
    assert expected in text, text
    code, text = _verify_cli(bank, db)
    assert code == 0 and "50 entries" in text, text


def test_cli_verify_accepts_the_untouched_served_ledger(bank, served_ledger, tmp_path):
    db, rows = served_ledger
    code, text = _verify_cli(bank, db)
    assert code == 0 and text.startswith("OK: 1 ledgers, 50 entries"), text
    code, text = _verify_cli(bank, _copy_db(db, tmp_path / "copy.db"))  # a plain copy is fine too
    assert code == 0, text


def test_serve_refuses_bad_configuration_with_a_clear_error(tmp_path):
    """Bad settings stop `lwasc serve` before it binds a port: exit 1, one line, no traceback."""
    import subprocess
    import sys
    from pathlib import Path

    lwasc = str(Path(sys.executable).with_name("lwasc"))
    env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    bank = str(Path(__file__).parent.parent / "examples" / "bank.lwas")
    cases = [
        ({"LWAS_RATE_LIMIT": "fast"}, "LWAS_RATE_LIMIT"),
        ({"LWAS_API_KEYS": "no-role"}, "LWAS_API_KEYS entry 1"),
        ({}, "declares no service"),
    ]
    for extra, expect in cases:
        target = bank if expect != "declares no service" else str(Path(bank).with_name("fib.lwas"))
        r = subprocess.run([lwasc, "serve", target, "--db", str(tmp_path / "l.db"), "--port", "1"],
                           env={**env, **extra}, capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, r.stderr
        assert expect in r.stderr and "Traceback" not in r.stderr
