"""Ledger entries and the in-memory ledger: canonical value encoding, idempotency, rollback,
proofs checked by the independent RFC 9162 verifier, and signed checkpoints."""
from __future__ import annotations

import base64
import hashlib
import math
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import rfc9162
from lwas.runtime.checkpoint import key_name_for, parse_checkpoint, sign_checkpoint
from lwas.runtime.ledger import (Ledger, LedgerError, decode_entry, decode_value, encode_entry,
                                 encode_value)
from lwas.runtime.merkle import MerkleTree, leaf_hash
from lwas.runtime.values import EPOCH, Money

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ART = hashlib.sha512(b"artifact").digest()

# ---------------------------------------------------------------------------------------------
# TypeDescs and values

names = st.text("abcdefghij", min_size=1, max_size=6)
currencies = st.sampled_from(["USD", "EUR", "JPY", "KWD"])
scalars = st.sampled_from(["int", "float", "bool", "truth", "text", "time"]) | \
    currencies.map(lambda c: {"money": c}) | st.just({"money": None}) | \
    st.lists(names, min_size=1, max_size=4, unique=True).map(
        lambda vs: {"enum": "E", "variants": vs})
map_keys = st.sampled_from(["int", "text", "bool", "time"]) | st.lists(names, min_size=1, max_size=4, unique=True).map(
    lambda vs: {"enum": "K", "variants": vs})
descs = st.recursive(scalars, lambda inner: inner.map(lambda t: {"array": t}) | st.tuples(map_keys, inner).map(
    lambda kv: {"map": kv[0], "value": kv[1]}) | st.lists(
    st.tuples(names, inner), min_size=0, max_size=4, unique_by=lambda f: f[0]).map(
        lambda fs: {"record": "R", "fields": [list(f) for f in fs]}), max_leaves=8)

I64 = st.integers(-2**63, 2**63 - 1)
times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.just(timezone.utc))


def values(desc):
    if desc == "int":
        return I64
    if desc in ("float", "truth"):
        return st.floats(allow_nan=False)
    if desc == "bool":
        return st.booleans()
    if desc == "text":
        return st.text()
    if desc == "time":
        return times
    if "money" in desc:
        return st.builds(Money, I64, st.just(desc["money"]) if desc["money"] else currencies)
    if "enum" in desc:
        return st.sampled_from(desc["variants"])
    if "array" in desc:
        return st.lists(values(desc["array"]), max_size=4)
    if "map" in desc:
        return st.dictionaries(values(desc["map"]), values(desc["value"]), max_size=4)
    return st.fixed_dictionaries({n: values(t) for n, t in desc["fields"]})


@st.composite
def typed_values(draw):
    desc = draw(descs)
    return desc, draw(values(desc))


def same(a, b) -> bool:
    """Equality that tells -0.0 from 0.0 (the encoding must keep the sign)."""
    if isinstance(a, float):
        return isinstance(b, float) and math.copysign(1, a) == math.copysign(1, b) and a == b
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(typed_values())
def test_value_round_trip(tv):
    desc, v = tv
    b = encode_value(desc, v)
    back = decode_value(desc, b)
    assert same(back, v)
    assert encode_value(desc, back) == b  # canonical
    for cut in {0, len(b) // 2, len(b) - 1} & set(range(len(b))):
        with pytest.raises(ValueError):
            decode_value(desc, b[:cut])
    with pytest.raises(ValueError):
        decode_value(desc, b + b"\x00")


@settings(max_examples=200, deadline=None)
@given(typed_values(), st.binary(max_size=40))
def test_decode_garbage_is_value_error_or_canonical(tv, junk):
    desc, _ = tv
    try:
        v = decode_value(desc, junk)
    except ValueError:
        return
    assert encode_value(desc, v) == junk  # anything accepted is the one encoding of its value


def test_value_layout_and_rejections():
    assert encode_value("int", -2) == b"\xff" * 7 + b"\xfe"
    assert encode_value({"money": "USD"}, Money(1250, "USD")) == (1250).to_bytes(8, "big") + b"USD"
    assert encode_value("text", "é") == b"\x00\x00\x00\x02\xc3\xa9"
    assert encode_value({"enum": "T", "variants": ["a", "bc"]}, "bc") == b"\x00\x02bc"
    t = EPOCH + timedelta(microseconds=1)
    assert encode_value("time", t) == (1).to_bytes(8, "big")
    rec = {"record": "R", "fields": [["b", "bool"], ["a", "int"]]}
    assert encode_value(rec, {"a": 1, "b": True}) == b"\x01" + (1).to_bytes(8, "big")
    for desc, bad in [("float", math.nan), ("truth", math.nan), ("int", True), ("int", 2**63),
                      ("bool", 1), ("text", b"x"), ({"money": "USD"}, Money(1, "EUR")),
                      ({"money": None}, Money(1, "usd")), ({"enum": "T", "variants": ["a"]}, "b"),
                      (rec, {"a": 1}), (rec, {"a": 1, "b": True, "c": 2}), ({"array": "int"}, (1,)),
                      ("time", datetime(2020, 1, 1))]:
        with pytest.raises(ValueError):
            encode_value(desc, bad)
    with pytest.raises(ValueError):
        decode_value("float", b"\x7f\xf8" + bytes(6))  # NaN
    with pytest.raises(ValueError):
        decode_value("bool", b"\x02")
    with pytest.raises(ValueError):
        decode_value("text", b"\x00\x00\x00\x01\xff")
    with pytest.raises(ValueError):
        decode_value({"enum": "T", "variants": ["a"]}, b"\x00\x01b")
    with pytest.raises(ValueError):
        decode_value({"money": "USD"}, bytes(8) + b"EUR")


def test_map_layout_is_canonical():
    """Maps: u32 count, then key and value pairs in LwaS key order (text by UTF-8 bytes, an enum
    in declaration order); decoding refuses another order and duplicate keys."""
    m = {"map": "text", "value": "int"}
    one = (1).to_bytes(8, "big")
    b = encode_value(m, {"é": 1, "z": 1, "a": 1})
    assert b == (3).to_bytes(4, "big") + b"".join(encode_value("text", k) + one for k in ["a", "z", "é"])
    assert decode_value(m, b) == {"a": 1, "z": 1, "é": 1}
    swapped = (2).to_bytes(4, "big") + encode_value("text", "z") + one + encode_value("text", "a") + one
    twice = (2).to_bytes(4, "big") + (encode_value("text", "a") + one) * 2
    for bad in (swapped, twice):
        with pytest.raises(ValueError, match="out of order"):
            decode_value(m, bad)
    e = {"map": {"enum": "K", "variants": ["b", "a"]}, "value": "bool"}
    assert encode_value(e, {"a": True, "b": False}) == (2).to_bytes(4, "big") + b"\x00\x01b\x00\x00\x01a\x01"
    for desc, bad in [(m, {1: 1}), (m, [("a", 1)]), (e, {"c": True})]:
        with pytest.raises(ValueError):
            encode_value(desc, bad)
    with pytest.raises(ValueError, match="exceeds"):  # a forged count is refused before any loop
        decode_value(m, (2**32 - 1).to_bytes(4, "big"))


def test_entry_round_trip_and_layout():
    b = encode_entry(7, -5, ART, bytes(range(32)), "k€y", b"payload")
    assert b[:4] == b"LWE1" and b[4:12] == (7).to_bytes(8, "big")
    assert b[12:20] == (-5).to_bytes(8, "big", signed=True) and b[20:84] == ART
    assert b[84:116] == bytes(range(32)) and b[116:120] == (5).to_bytes(4, "big")
    e = decode_entry(b)
    assert (e.seq, e.time_micros, e.artifact, e.prev, e.key, e.payload) == \
        (7, -5, ART, bytes(range(32)), "k€y", b"payload")
    for bad in [b[:100], b"LWE2" + b[4:], b[:116] + (99).to_bytes(4, "big") + b[120:]]:
        with pytest.raises(ValueError):
            decode_entry(bad)


# ---------------------------------------------------------------------------------------------
# the ledger


def ledger(n: int = 0) -> Ledger:
    lg = Ledger("payments", "lwas.test/payments", KEY)
    for i in range(n):
        lg.stage(f"k{i}", b"p%d" % i, 1000 + i, ART)
    lg.commit()
    return lg


def test_idempotency_against_committed_and_staged():
    lg = ledger(3)
    assert lg.check("k1", b"p1") == "exists"
    assert lg.check("k1", b"other") == "conflict"
    assert lg.check("new", b"x") == "new"
    seq, _ = lg.stage("new", b"x", 5, ART)
    assert seq == 3
    assert lg.check("new", b"x") == "exists" and lg.check("new", b"y") == "conflict"
    with pytest.raises(ValueError):
        lg.stage("new", b"x", 5, ART)
    with pytest.raises(ValueError):
        lg.stage("k0", b"p0", 5, ART)
    assert lg.size == 3 and lg.proof("new") is None
    lg.commit()
    assert lg.size == 4 and lg.check("new", b"x") == "exists" and lg.proof("new")


def test_rollback_restores_head():
    lg = ledger(2)
    before = lg.staged()
    lg.stage("a", b"1", 1, ART)
    lg.stage("b", b"2", 1, ART)
    lg.rollback()
    assert lg.staged() == before == [] and lg.size == 2 and lg.check("a", b"1") == "new"
    seq, data = lg.stage("a", b"3", 1, ART)
    assert seq == 2 and decode_entry(data).prev == leaf_hash(lg.entry(1))
    lg.commit()
    # a fresh ledger loaded from the committed rows agrees on everything
    other = Ledger("payments", "lwas.test/payments", KEY)
    other.load([(i, decode_entry(b).key, b) for i, b in enumerate(lg.entries())])
    assert other.tree.root() == lg.tree.root() and other.check("a", b"3") == "exists"


def test_load_rejects_broken_rows():
    lg = ledger(4)
    rows = [(i, decode_entry(b).key, b) for i, b in enumerate(lg.entries())]

    def fails(rows, seq, key):
        with pytest.raises(LedgerError) as e:
            Ledger("payments", "o", KEY).load(rows)
        assert (e.value.seq, e.value.key) == (seq, key), str(e.value)
        assert f"seq {seq}" in str(e.value) and repr(key) in str(e.value)

    fails([rows[0], rows[2]], 2, "k2")  # gap
    fails([rows[0], (1, "k2", rows[2][2])], 1, "k2")  # moved
    fails([rows[0], (1, "k1", rows[1][2][:-1] + b"X"), rows[2]], 2, "k2")  # edited -> chain
    fails([rows[0], (1, "zz", rows[1][2])], 1, "zz")  # key column does not match
    # catch_up continues from the head
    part = Ledger("payments", "o", KEY)
    part.load(rows[:2])
    part.catch_up(rows[2:])
    assert part.size == 4 and part.tree.root() == lg.tree.root()


def test_load_is_all_or_nothing_and_checks_stored_leaf_hashes():
    lg = ledger(5)
    rows = [(i, decode_entry(b).key, b, leaf_hash(b)) for i, b in enumerate(lg.entries())]
    part = Ledger("payments", "o", KEY)
    part.load(rows[:2])
    with pytest.raises(LedgerError, match="seq 4.*stored leaf hash"):
        part.load(rows[2:4] + [rows[4][:3] + (bytes(32),)])
    assert part.size == 2 and part.check("k2", b"p2") == "new"  # nothing of the failed rows stayed
    loading = part.prepare(rows[2:])
    assert part.size == 2 and [e.key for e in part.accept(loading)] == ["k2", "k3", "k4"]
    assert part.size == 5 and part.tree.root() == lg.tree.root() and part.check("k4", b"p4") == "exists"
    with pytest.raises(RuntimeError):
        part.accept(loading)  # prepared against another size


def test_a_ledger_reading_its_entries_from_a_store_keeps_only_keys_and_hashes():
    """With `read`, entry bytes stay in the store: proofs, checks and entries() read them back;
    `restore` starts it from keys and a tree (a snapshot) and `load` continues the chain."""
    mem = ledger(9)
    stored = mem.entries()
    reads = []

    def read(seq):
        reads.append(seq)
        return stored[seq]

    lg = Ledger("payments", "lwas.test/payments", KEY, read=read)
    lg.load([(i, decode_entry(b).key, b) for i, b in enumerate(stored[:4])])
    assert lg._entries is None and not reads
    assert lg.check("k1", b"p1") == "exists" and lg.check("k1", b"px") == "conflict" and reads == [1, 1]
    assert lg.check("k7", b"p7") == "new"
    other = Ledger("payments", "lwas.test/payments", KEY, read=read)
    other.restore([decode_entry(b).key for b in stored[:6]], MerkleTree([leaf_hash(b) for b in stored[:6]]))
    other.load([(i, decode_entry(b).key, b) for i, b in enumerate(stored[6:], 6)])
    assert other.size == 9 and other.tree.root() == mem.tree.root() and other.entries() == stored
    assert other.proof("k2") == mem.proof("k2") and other.checkpoint() == mem.checkpoint()
    assert other.consistency(3, 9) == mem.consistency(3, 9)
    seq, data = other.stage("k9", b"p9", 2000, ART)
    assert (seq, data) == mem.stage("k9", b"p9", 2000, ART)
    # the tail must chain to the restored prefix
    broken = Ledger("payments", "o", KEY, read=read)
    broken.restore([decode_entry(b).key for b in stored[:5]], MerkleTree([leaf_hash(b) for b in stored[:5]]))
    with pytest.raises(LedgerError, match="seq 5"):
        broken.load([(6, "k6", stored[6])])
    with pytest.raises(LedgerError, match="seq 6.*prev hash"):
        broken.load([(5, "k5", stored[5]), (6, "k6", encode_entry(6, 1006, ART, bytes(32), "k6", b"p6"))])
    assert broken.size == 5
    with pytest.raises(LedgerError, match="duplicate key"):
        Ledger("payments", "o", KEY, read=read).restore(["a", "b", "a"], MerkleTree([leaf_hash(b) for b in stored[:3]]))
    with pytest.raises(RuntimeError):
        ledger(1).restore([], MerkleTree())  # keeps its entries in memory: cannot skip them


def test_proofs_verify_independently_and_checkpoints_parse():
    lg = ledger(0)
    roots = {}
    for batch in range(6):
        for i in range(batch * 7 + 1):
            lg.stage(f"b{batch}-{i}", b"x" * i, i, ART)
        lg.commit()
        roots[lg.size] = lg.tree.root()
    size = lg.size
    cp = lg.checkpoint()
    assert cp["tree_size"] == size and cp["origin"] == "lwas.test/payments"
    assert parse_checkpoint(cp["checkpoint"], KEY.public_key()) == \
        ("lwas.test/payments", size, bytes.fromhex(cp["root_hash"]))
    assert lg.checkpoint()["checkpoint"] is cp["checkpoint"]  # cached per size
    for key in ["b0-0", "b3-5", f"b5-{35}"]:
        p = lg.proof(key)
        entry = base64.b64decode(p["entry"])
        assert decode_entry(entry).key == key and leaf_hash(entry).hex() == p["leaf_hash"]
        _, n, root = parse_checkpoint(p["checkpoint"], KEY.public_key())
        assert n == p["tree_size"] == size
        assert rfc9162.verify_inclusion(p["leaf_index"], n, leaf_hash(entry),
                                        [bytes.fromhex(h) for h in p["audit_path"]], root)
    for first in roots:
        c = lg.consistency(first, size)
        assert rfc9162.verify_consistency(first, size, roots[first], roots[size],
                                          [bytes.fromhex(h) for h in c["proof"]])
    for bad in [(-1, 3), (4, 3), (0, size + 1)]:
        with pytest.raises(ValueError):
            lg.consistency(*bad)


def test_checkpoint_format_and_rejections():
    pub = KEY.public_key()
    name = key_name_for(pub)
    assert name.startswith("lwas-") and len(name) == 13
    root = hashlib.sha256(b"r").digest()
    note = sign_checkpoint("example.org/log", 12, root, KEY, name)
    body, sig = note.split("\n\n")
    assert body == "example.org/log\n12\n" + base64.b64encode(root).decode()
    assert sig.startswith("\u2014 " + name + " ") and sig.endswith("\n")
    blob = base64.b64decode(sig.split(" ")[2])
    kh = hashlib.sha256(name.encode() + b"\n\x01" + pub.public_bytes_raw()).digest()[:4]
    assert blob[:4] == kh and len(blob) == 68
    pub.verify(blob[4:], (body + "\n").encode())
    assert parse_checkpoint(note, pub) == ("example.org/log", 12, root)
    other = Ed25519PrivateKey.generate()
    cosigned = note + sign_checkpoint("example.org/log", 12, root, other, "other").split("\n\n")[1]
    assert parse_checkpoint(cosigned, pub)[1] == 12
    bad = {
        "size edited": note.replace("\n12\n", "\n13\n"),
        "origin edited": note.replace("example.org", "example.com"),
        "no blank line": note.replace("\n\n", "\n"),
        "leading zero": note.replace("\n12\n", "\n012\n"),
        "short root": note.replace(base64.b64encode(root).decode(), "AAAA"),
        "other key only": sign_checkpoint("example.org/log", 12, root, other, name),
        "no signature": note.split("\n\n")[0] + "\n\n",
        "flipped sig": note[:-6] + ("A" if note[-6] != "A" else "B") + note[-5:],
        "ascii dash": note.replace("\u2014", "-"),
    }
    for why, text in bad.items():
        with pytest.raises(ValueError):
            parse_checkpoint(text, pub)
            pytest.fail(why)
