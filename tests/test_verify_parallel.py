"""`ledger verify` on several cores (lwas.runtime.verify_parallel) says exactly what the
sequential verifier says: the same report on intact ledgers of every shape (checkpoints at any
size, a short last chunk, an unsigned tail), and on damaged ones the same first bad entry.
Small chunks (4 entries) make small ledgers cross many chunk boundaries."""
from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import asdict

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings, strategies as st

from helpers import run_sql
from lwas.runtime import verify_parallel as vp
from lwas.runtime.ledger import Ledger, append_batch
from lwas.runtime.store import open_store
from lwas.runtime.verify import _verify_fast, verify_store

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ART = hashlib.sha512(b"verify-parallel").digest()


@pytest.fixture(scope="module")
def executor():
    with vp.pool(2) as ex:
        yield ex


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(vp, "CHUNK", 4)


def build(path, batches: list[int], ledgers=("a",)) -> str:
    """A store whose ledgers got one signed checkpoint per batch of the given sizes."""
    url = str(path)
    store = open_store(url)
    for name in ledgers:
        lg = Ledger(name, f"lwas.test/{name}", KEY)
        n = 0
        for size in batches:
            append_batch(store, lg, [(f"{name}-{n + i}", f"payload {n + i}".encode() * 3) for i in range(size)], 1, ART)
            n += size
    store.close()
    return url


def reports(url, **kw):
    seq = verify_store(url, KEY.public_key(), jobs=1, **kw)
    par = verify_store(url, KEY.public_key(), jobs=2, min_parallel=0, **kw)
    one, two = asdict(seq), asdict(par)
    one.pop("seconds"), two.pop("seconds")
    return one, two


@settings(max_examples=15)
@given(batches=st.lists(st.integers(1, 9), min_size=0, max_size=8))
def test_an_intact_ledger_is_vouched_for_by_the_fast_path(tmp_path_factory, executor, batches):
    url = build(tmp_path_factory.mktemp("v") / "l.db", batches)
    store = open_store(url, create=False)
    try:
        done = _verify_fast(store, url, "a", store.next_seq("a"), KEY.public_key(), False, executor)
    finally:
        store.close()
    n = sum(batches)
    # the fast path itself says intact (no fallback): its roots matched every signed checkpoint
    assert done == (n, len(batches), 0)


@settings(max_examples=8)
@given(batches=st.lists(st.integers(1, 9), min_size=1, max_size=6))
def test_the_reports_are_the_same(tmp_path_factory, batches):
    url = build(tmp_path_factory.mktemp("v") / "l.db", batches, ledgers=("a", "b"))
    one, two = reports(url)
    assert one == two and one["ok"] and one["entries"] == 2 * sum(batches)


def _flip(seq):
    def go(url):
        c = sqlite3.connect(url)
        (data,) = c.execute("SELECT entry FROM entries WHERE ledger = 'a' AND seq = ?", (seq,)).fetchone()
        c.close()
        run_sql(url, ("UPDATE entries SET entry = ? WHERE ledger = 'a' AND seq = ?", (data[:-1] + b"!", seq)))
    return go


def _delete(seq):
    return lambda url: run_sql(url, ("DELETE FROM entries WHERE ledger = 'a' AND seq = ?", (seq,)))


def _swap(s):
    return lambda url: run_sql(url, ("UPDATE entries SET seq = -1 WHERE ledger = 'a' AND seq = ?", (s,)),
                            ("UPDATE entries SET seq = ? WHERE ledger = 'a' AND seq = ?", (s, s + 1)),
                            ("UPDATE entries SET seq = ? WHERE ledger = 'a' AND seq = -1", (s + 1,)))


def _drop_checkpoints(url):
    run_sql(url, ("DELETE FROM checkpoints WHERE ledger = 'a' AND tree_size > 20",))


@pytest.mark.parametrize("tamper", [_flip(0), _flip(3), _flip(4), _flip(13), _flip(29), _delete(8), _delete(29),
                                    _swap(3), _swap(11), _drop_checkpoints],
                         ids=["flip-0", "flip-3", "flip-4", "flip-13", "flip-last", "delete-8", "delete-last",
                              "swap-3-4", "swap-11-12", "unsigned-tail"])
def test_damage_is_named_the_same_way(tmp_path, tamper):
    url = build(tmp_path / "l.db", [5, 7, 3, 1, 9, 5])  # 30 entries, checkpoints off the chunk grid
    tamper(url)
    one, two = reports(url)
    assert not one["ok"] and one["problem"] is not None
    assert one == two
    if tamper is _drop_checkpoints:
        one, two = reports(url, allow_unsigned_tail=True)
        assert one == two and one["ok"] and one["ledgers"]["a"]["unsigned"] == 30 - 16


def test_another_keys_ledger_is_wrong_key_on_both_paths(tmp_path):
    url = build(tmp_path / "l.db", [6, 6])
    other = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    seq = asdict(verify_store(url, other, jobs=1))
    par = asdict(verify_store(url, other, jobs=2, min_parallel=0))
    seq.pop("seconds"), par.pop("seconds")
    assert seq == par and seq["problem"]["wrong_key"]


def test_chunk_stacks_fold_into_the_tree_root():
    """The chunk fold against the Merkle tree (lwas.runtime.merkle), at every size up to 70 with
    chunks of 8: the prefix of full chunks plus the last chunk's own stack."""
    from lwas.runtime.merkle import MerkleTree
    from lwas.runtime.verify import _root

    leaves = [hashlib.sha256(b"\x00" + bytes([i])).digest() for i in range(70)]
    tree = MerkleTree(leaves)
    for n in range(71):
        prefix: list[bytes] = []
        for start in range(0, n, 8):
            end = min(start + 8, n)
            stack: list[bytes] = []
            for j in range(start, end):
                stack.append(leaves[j])
                k = j + 1 - start
                while not k & 1:
                    r = stack.pop()
                    stack[-1] = hashlib.sha256(b"\x01" + stack[-1] + r).digest()
                    k >>= 1
            if end == n:
                assert _root(prefix + stack) == tree.root(n), n
            if end - start == 8:
                vp.push(prefix, stack[0], end // 8)
        if n == 0:
            assert _root([]) == tree.root(0)
