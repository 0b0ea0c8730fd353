"""Ledger backup and restore on real stores (SQLite files, throwaway PostgreSQL databases):
`lwasc ledger export | import | compare`, refusal of tampered, truncated, wrong-key and
out-of-order archives and of non-empty targets, incremental chains with consistency proofs,
export while a writer appends, and a service restarted on a restored store."""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import sqlite3
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lwas.tools.cli import main
from lwas.runtime.backup import _write_archive, compare_stores, export_archive, read_archive
from lwas.runtime.ledger import Ledger, append_batch
from lwas.runtime.store import open_store
from lwas.runtime.verify import verify_store
from postgres import postgres_url  # noqa: F401  (session fixture: a throwaway PostgreSQL cluster)
from serving import lwasc

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ART = hashlib.sha512(b"artifact").digest()
T0 = 1_700_000_000_000_000


def _pem(key) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def pub(tmp_path) -> str:
    p = tmp_path / "service.pub"
    p.write_bytes(_pem(KEY))
    return str(p)


@pytest.fixture
def other_pub(tmp_path) -> str:
    p = tmp_path / "other.pub"
    p.write_bytes(_pem(OTHER))
    return str(p)


@pytest.fixture
def pg(request):
    """A function returning the URL of a fresh, empty PostgreSQL database."""
    import psycopg

    base = request.getfixturevalue("postgres_url")

    def new() -> str:
        name = "b_" + uuid.uuid4().hex[:12]
        with psycopg.connect(base, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return base.replace("/lwas?", f"/{name}?")

    return new


class Writer:
    """Appends to named ledgers of one store through Ledger + append_batch (as a Service does)."""

    def __init__(self, url: str, key=KEY):
        self.store = open_store(url)
        self.key = key
        self.ledgers: dict[str, Ledger] = {}
        self.n = 0

    def add(self, count: int, name: str = "payments", batch: int = 4, prefix: str = "k") -> None:
        lg = self.ledgers.get(name) or self.ledgers.setdefault(name, Ledger(name, f"lwas.test/{name}", self.key))
        for b in range(0, count, batch):
            items = [(f"{prefix}{self.n + i}", b"payload-%d" % (self.n + i)) for i in range(min(batch, count - b))]
            self.n += len(items)
            res = append_batch(self.store, lg, items, T0, ART)
            assert all(s == "new" for s, _ in res)

    def close(self) -> None:
        self.store.close()


def filled(url: str, n: int = 13) -> Writer:
    w = Writer(url)
    w.add(n, "payments")
    w.add(5, "refunds", batch=2, prefix="r")
    return w


def dump(url: str) -> dict:
    s = open_store(url, create=False)
    try:
        return {n: ([(q, k, bytes(d)) for q, k, d in s.read(n)], s.checkpoints(n)) for n in s.ledgers()}
    finally:
        s.close()


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def reseal(path, edit) -> None:
    """Rewrite an archive after `edit(lines)`, with a correct end record: an attacker who knows
    the format. Only the signatures and proofs stand in the way then."""
    with gzip.open(path, "rb") as f:
        lines = [json.loads(x) for x in f.read().decode().splitlines()]
    body = lines[:-1]
    edit(body)
    _write_archive(str(path), body[0], body[1:])


def b64flip(s: str, at: int = -1) -> str:
    b = bytearray(base64.b64decode(s))
    b[at] ^= 1
    return base64.b64encode(bytes(b)).decode()


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("kinds", [("sqlite", "sqlite"), ("sqlite", "postgres"), ("postgres", "sqlite")])
def test_round_trip(kinds, tmp_path, pub, pg, capsys):
    src = str(tmp_path / "src.db") if kinds[0] == "sqlite" else pg()
    dst = str(tmp_path / "dst.db") if kinds[1] == "sqlite" else pg()
    filled(src).close()
    arc = tmp_path / "full.lwasbak"
    code, out, err = run(capsys, "ledger", "export", src, "-o", arc, "--pubkey", pub)
    assert code == 0, err
    assert "full archive" in out and "payments: 0..13" in out
    h = read_archive(str(arc)).header
    assert h["format"] == "lwas-ledger-archive" and h["version"] == 1 and h["kind"] == "full"
    assert h["public_key"].encode() == _pem(KEY)
    assert {n: v["size"] for n, v in h["ledgers"].items()} == {"payments": 13, "refunds": 5}
    code, out, err = run(capsys, "ledger", "import", arc, "--db", dst, "--pubkey", pub)
    assert code == 0, err
    assert "18 entries" in out
    assert dump(dst) == dump(src)
    assert verify_store(dst, KEY.public_key()).ok
    code, out, _ = run(capsys, "ledger", "compare", src, dst)
    assert code == 0 and "CONSISTENT" in out and "equal (13 entries)" in out


def test_export_is_deterministic(tmp_path):
    src = str(tmp_path / "src.db")
    filled(src).close()
    when = datetime(2026, 1, 25, tzinfo=timezone.utc)
    export_archive(src, str(tmp_path / "a"), KEY.public_key(), now=when)
    export_archive(src, str(tmp_path / "b"), KEY.public_key(), now=when)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


# ------------------------------------------------------------------------------ refusals


@pytest.fixture
def archive(tmp_path, pub, capsys):
    src = str(tmp_path / "src.db")
    filled(src).close()
    arc = tmp_path / "full.lwasbak"
    assert run(capsys, "ledger", "export", src, "-o", arc, "--pubkey", pub)[0] == 0
    return arc


def refused(capsys, arc, target, *extra, says: str) -> str:
    code, out, err = run(capsys, "ledger", "import", *(arc if isinstance(arc, list) else [arc]),
                         "--db", target, *extra)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err, err
    assert "Traceback" not in err
    return err


def assert_empty(target: str) -> None:
    if Path(target).exists():
        assert dump(target) == {}


def test_tampered_entry_refused(archive, tmp_path, capsys):
    target = str(tmp_path / "t.db")
    whole = archive.read_bytes()
    lines = gzip.decompress(whole).decode().splitlines(keepends=True)
    i = next(i for i, x in enumerate(lines) if '"seq":3,' in x and '"payments"' in x)
    e = json.loads(lines[i])
    e["data"] = b64flip(e["data"])
    lines[i] = json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n"
    archive.write_bytes(gzip.compress("".join(lines).encode()))  # end record left as it was
    refused(capsys, archive, target, says="damaged")  # the end record's digest
    archive.write_bytes(whole)

    def edit(lines):  # the same change, resealed: the chain and the signed roots catch it
        e = next(x for x in lines if x.get("t") == "entry" and x["seq"] == 3)
        e["data"] = b64flip(e["data"])
    reseal(archive, edit)
    err = refused(capsys, archive, target, says="TAMPERED: ledger 'payments'")
    assert "seq 3" in err
    assert_empty(target)


def test_tampered_checkpoint_and_header_refused(archive, tmp_path, capsys):
    target = str(tmp_path / "t.db")

    def edit(lines):
        lines[0]["ledgers"]["payments"]["root"] = b64flip(lines[0]["ledgers"]["payments"]["root"])
    reseal(archive, edit)
    refused(capsys, archive, target, says="header root differs from the signed checkpoint")

    def edit2(lines):
        lines[0]["ledgers"]["payments"]["root"] = b64flip(lines[0]["ledgers"]["payments"]["root"])
        c = [x for x in lines if x.get("t") == "checkpoint" and x["ledger"] == "payments"][-1]
        c["note"] = c["note"].replace("\n13\n", "\n12\n")
    reseal(archive, edit2)
    refused(capsys, archive, target, says="bad signature")
    assert_empty(target)


def test_truncated_archive_refused(archive, tmp_path, capsys):
    target = str(tmp_path / "t.db")
    whole = archive.read_bytes()
    archive.write_bytes(whole[: len(whole) // 2])
    refused(capsys, archive, target, says="truncated")
    raw = gzip.decompress(whole)
    archive.write_bytes(gzip.compress(raw[: raw.rindex(b"\n", 0, -1) + 1]))  # cut at a line boundary
    refused(capsys, archive, target, says="truncated archive (no end record)")
    archive.write_bytes(whole)

    def edit(lines):  # drop the last entries of a ledger, resealed
        drop = [x for x in lines if x.get("t") == "entry" and x["ledger"] == "payments"][-2:]
        for x in drop:
            lines.remove(x)
    reseal(archive, edit)
    refused(capsys, archive, target, says="truncated or reordered")
    assert_empty(target)


def test_wrong_key_refused(archive, tmp_path, pub, other_pub, capsys):
    target = str(tmp_path / "t.db")
    refused(capsys, archive, target, "--pubkey", other_pub, says="not by the given --pubkey")

    def edit(lines):  # claim another key in the header: the signatures are not by it
        lines[0]["public_key"] = _pem(OTHER).decode()
    reseal(archive, edit)
    refused(capsys, archive, target, says="no signature by key")
    refused(capsys, archive, target, "--pubkey", pub, says="not by the given --pubkey")
    assert_empty(target)
    code, _, err = run(capsys, "ledger", "export", str(tmp_path / "src.db"), "-o", tmp_path / "x",
                       "--pubkey", other_pub)
    assert code == 2 and "WRONG KEY" in err and "TAMPERED" not in err and not (tmp_path / "x").exists()


def test_non_empty_target_refused(archive, tmp_path, pg, capsys):
    for target in (str(tmp_path / "busy.db"), pg()):
        Writer(target).add(2, "other")
        before = dump(target)
        refused(capsys, archive, target, says="is not empty")
        assert dump(target) == before


def test_tampered_store_not_exported(tmp_path, pub, capsys):
    src = str(tmp_path / "src.db")
    filled(src).close()
    c = sqlite3.connect(src)
    (data,) = c.execute("SELECT entry FROM entries WHERE ledger = 'payments' AND seq = 4").fetchone()
    c.execute("UPDATE entries SET entry = ? WHERE ledger = 'payments' AND seq = 4", (data[:-1] + b"!",))
    c.commit()
    c.close()
    code, _, err = run(capsys, "ledger", "export", src, "-o", tmp_path / "x", "--pubkey", pub)
    assert code == 2 and "TAMPERED: ledger 'payments' seq 4" in err
    assert not (tmp_path / "x").exists()


def test_cli_errors_are_one_line(tmp_path, pub):
    r = lwasc("ledger", "import", tmp_path / "missing.lwasbak", "--db", tmp_path / "t.db", home=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "no such archive" in r.stderr
    assert "Traceback" not in r.stderr
    r = lwasc("ledger", "export", tmp_path / "nope.db", "-o", tmp_path / "x", "--pubkey", pub, home=tmp_path)
    assert r.returncode == 2 and "no such ledger database" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------ incrementals


def test_incremental_chain(tmp_path, pub, pg, capsys):
    src = str(tmp_path / "src.db")
    w = filled(src)
    full, inc1, inc2 = (tmp_path / n for n in ("full", "inc1", "inc2"))
    assert run(capsys, "ledger", "export", src, "-o", full, "--pubkey", pub)[0] == 0
    w.add(7, "payments")
    code, out, err = run(capsys, "ledger", "export", src, "-o", inc1, "--pubkey", pub, "--since", full)
    assert code == 0, err
    assert "incremental archive" in out and "payments: 13..20" in out and "refunds: 5..5" in out
    w.add(6, "payments")
    w.add(3, "audit", prefix="a")  # a ledger new since the last backup
    assert run(capsys, "ledger", "export", src, "-o", inc2, "--pubkey", pub, "--since", inc1)[0] == 0
    w.close()
    h = read_archive(str(inc2)).header
    assert h["kind"] == "incremental" and h["ledgers"]["payments"]["from"] == 20
    assert h["ledgers"]["audit"]["from"] == 0
    assert sum(1 for r in read_archive(str(inc2)).records if r["t"] == "entry") == 9

    for target in (str(tmp_path / "restored.db"), pg()):
        code, out, err = run(capsys, "ledger", "import", full, inc1, inc2, "--db", target, "--pubkey", pub)
        assert code == 0, err
        assert dump(target) == dump(src)
        assert verify_store(target, KEY.public_key()).ok

    t = str(tmp_path / "t.db")
    refused(capsys, [full, inc2], t, says="does not follow the previous archive")
    refused(capsys, [inc1, inc2], t, says="expected a full one")
    refused(capsys, [full, inc2, inc1], t, says="does not follow")

    def edit(lines):  # a broken consistency proof
        p = next(x for x in lines if x.get("t") == "consistency" and x["ledger"] == "payments")
        p["proof"][0] = b64flip(p["proof"][0])
    reseal(inc1, edit)
    refused(capsys, [full, inc1, inc2], t, says="consistency proof from tree size 13 to 20 does not verify")
    assert_empty(t)


def test_incremental_refuses_a_rewritten_store(tmp_path, pub, capsys):
    """--since against a store whose history differs from the previous archive is an error."""
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    Writer(a).add(6)
    wb = Writer(b)
    wb.add(6, prefix="x")
    wb.add(3, prefix="x")
    wb.close()
    assert run(capsys, "ledger", "export", a, "-o", tmp_path / "full", "--pubkey", pub)[0] == 0
    code, _, err = run(capsys, "ledger", "export", b, "-o", tmp_path / "inc", "--pubkey", pub,
                       "--since", tmp_path / "full")
    assert code == 2 and "does not extend the previous archive" in err


# ------------------------------------------------------------------------------ live export


def test_export_during_writes_is_a_signed_prefix(tmp_path, pub, capsys):
    src = str(tmp_path / "src.db")
    filled(src, 8).close()
    stop = threading.Event()
    errors: list[BaseException] = []

    written = [0]

    def write():  # until the exports are done: bounded in time and count
        w = Writer(src)  # its Ledger catches up with the stored rows on its first append
        try:
            end = time.monotonic() + 30
            while not stop.is_set() and time.monotonic() < end and written[0] < 30_000:
                w.add(3, "payments", batch=3, prefix="live")
                written[0] += 3
                time.sleep(0.005)  # a steady trickle: the exports keep up with it
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            w.close()

    t = threading.Thread(target=write, daemon=True)
    t.start()
    sizes = []
    try:
        deadline = time.monotonic() + 20
        for i in range(6):
            assert time.monotonic() < deadline
            arc = tmp_path / f"live{i}"
            code, _, err = run(capsys, "ledger", "export", src, "-o", arc, "--pubkey", pub)
            assert code == 0, err
            a = read_archive(str(arc))
            size = a.ledgers["payments"]["size"]
            cps = [r["size"] for r in a.records if r["t"] == "checkpoint" and r["ledger"] == "payments"]
            assert cps[-1] == size  # ends exactly at a signed checkpoint
            sizes.append(size)
            target = str(tmp_path / f"r{i}.db")
            assert run(capsys, "ledger", "import", arc, "--db", target, "--pubkey", pub)[0] == 0
            ok, lines = compare_stores(src, target)  # a prefix of the (still growing) source
            assert ok, lines
            seen = written[0]
            while written[0] == seen and time.monotonic() < deadline:  # the writer moves on
                time.sleep(0.005)
    finally:
        stop.set()
        t.join(20)
    assert not errors, errors
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_unsigned_tail_is_not_exported(tmp_path, pub, capsys):
    src = str(tmp_path / "src.db")
    w = filled(src, 6)
    lg = w.ledgers["payments"]
    with w.store.transaction() as tx:  # rows without a checkpoint (a crashed or forged writer)
        lg.stage("tail0", b"x", T0, ART)
        lg.stage("tail1", b"y", T0, ART)
        tx.append_many("payments", lg.staged())
    lg.commit()
    w.close()
    code, out, err = run(capsys, "ledger", "export", src, "-o", tmp_path / "a", "--pubkey", pub)
    assert code == 0, err
    assert "2 entries past the last signed checkpoint not exported" in err
    assert read_archive(str(tmp_path / "a")).ledgers["payments"]["size"] == 6


# ------------------------------------------------------------------------------ compare


def test_compare(tmp_path, pg, capsys):
    a, b, c = str(tmp_path / "a.db"), pg(), str(tmp_path / "c.db")
    wa, wb, wc = Writer(a), Writer(b), Writer(c)
    wa.add(5)
    wb.add(5)
    wc.add(3)
    wc.add(2, prefix="other")  # seq 3, 4 differ
    code, out, _ = run(capsys, "ledger", "compare", a, b)
    assert code == 0 and "ledger 'payments': equal (5 entries)" in out
    wb.add(4)
    code, out, _ = run(capsys, "ledger", "compare", a, b)
    assert code == 0 and "B is ahead by 4 entries (A has 5, B has 9)" in out and out.endswith("CONSISTENT\n")
    code, out, _ = run(capsys, "ledger", "compare", b, a)
    assert code == 0 and "A is ahead by 4 entries" in out
    code, out, _ = run(capsys, "ledger", "compare", a, c)
    assert code == 1 and "ledger 'payments': DIVERGED at seq 3: A has key 'k3', B has key 'other3'" in out
    wc.add(1, "extra", prefix="e")  # a ledger only one side has is a prefix case
    code, out, _ = run(capsys, "ledger", "compare", a, c)
    assert code == 1 and "ledger 'extra': B is ahead by 1 entries" in out
    for w in (wa, wb, wc):
        w.close()
    code, _, err = run(capsys, "ledger", "compare", a, tmp_path / "missing.db")
    assert code == 2 and err.startswith("error: cannot compare") and err.count("\n") == 1


# ------------------------------------------------------------------------------ a served ledger


def test_service_on_a_restored_store_serves_the_same_state(tmp_path, capsys):
    from helpers import Server, compile_signed
    from test_economy import ECONOMY, post, tx

    artifact, key = compile_signed(path=ECONOMY)
    pubfile = tmp_path / "svc.pub"
    pubfile.write_bytes(_pem(key))
    src, dst = str(tmp_path / "live.db"), str(tmp_path / "restored.db")
    with Server(artifact, key, src) as s:
        for i, (amount, kind) in enumerate([("1000.00", "Payment"), ("250.50", "Revenue"),
                                            ("75.25", "Expense"), ("20.00", "Refund"), ("5.05", "Payment")]):
            assert post(s, tx(f"b{i}", amount, kind)).status_code == 200
        equity, metrics = s.http.get("/equity").text, s.http.get("/metrics").json()
    arc = tmp_path / "economy.lwasbak"
    assert run(capsys, "ledger", "export", src, "-o", arc, "--pubkey", pubfile)[0] == 0
    code, _, err = run(capsys, "ledger", "import", arc, "--db", dst, "--pubkey", pubfile)
    assert code == 0, err
    with Server(artifact, key, dst) as s:
        assert s.http.get("/equity").text == equity
        assert s.http.get("/metrics").json() == metrics
        assert post(s, tx("b9", "1.00")).status_code == 200  # and it keeps appending
    assert verify_store(dst, key.public_key()).ok
