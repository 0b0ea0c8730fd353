"""RFC 6962/9162 Merkle tree: roots, inclusion and consistency proofs, checked against the
independent iterative verifier in rfc9162.py and adversarially (tampered proofs must fail)."""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rfc9162
from lwas.runtime.merkle import (EMPTY_ROOT, MerkleTree, leaf_hash, verify_consistency,
                                 verify_inclusion)


def tree_of(n: int) -> tuple[list[bytes], MerkleTree]:
    data = [b"leaf-%d" % i for i in range(n)]
    return data, MerkleTree([leaf_hash(d) for d in data])


def test_known_vectors():
    # RFC 6962 test vectors (certificate-transparency-go merkletree tests): 8 leaves
    data = [bytes.fromhex(x) for x in
            ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]]
    t = MerkleTree([leaf_hash(d) for d in data])
    assert t.root().hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert t.root(0) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert t.root(1).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert t.root(3).hex() == "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"


def test_every_proof_small_trees():
    data, t = tree_of(40)
    for size in range(0, 41):
        root = t.root(size)
        assert root == rfc9162.mth(data[:size])
        for i in range(size):
            p = t.inclusion_proof(i, size)
            assert rfc9162.verify_inclusion(i, size, leaf_hash(data[i]), p, root)
            assert verify_inclusion(leaf_hash(data[i]), i, size, p, root)
        for first in range(0, size + 1):
            p = t.consistency_proof(first, size)
            r1 = t.root(first)
            assert rfc9162.verify_consistency(first, size, r1, root, p), (first, size)
            assert verify_consistency(first, size, p, r1, root), (first, size)


def test_bad_ranges_raise():
    _, t = tree_of(5)
    for bad in [(5, 5), (-1, 5), (0, 6), (0, 0)]:
        with pytest.raises(ValueError):
            t.inclusion_proof(*bad)
    for bad in [(3, 2), (-1, 3), (2, 6)]:
        with pytest.raises(ValueError):
            t.consistency_proof(*bad)
    with pytest.raises(ValueError):
        t.root(6)


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def path_len(m: int, n: int) -> int:
    """len(PATH(m, D[n])) from RFC 6962 §2.1.1's recursive definition."""
    if n <= 1:
        return 0
    k = _split(n)
    return 1 + (path_len(m, k) if m < k else path_len(m - k, n - k))


def proof_len(m: int, n: int, whole: bool = True) -> int:
    """len(SUBPROOF(m, D[n], b)) from RFC 6962 §2.1.2."""
    if m == n:
        return 0 if whole else 1
    k = _split(n)
    return 1 + (proof_len(m, k, whole) if m <= k else proof_len(m - k, n - k, False))


def _tamperings(path: list[bytes], rnd) -> list[list[bytes]]:
    out = []
    if path:
        i = rnd.randrange(len(path))
        flipped = bytearray(path[i])
        flipped[rnd.randrange(32)] ^= 1 << rnd.randrange(8)
        out.append(path[:i] + [bytes(flipped)] + path[i + 1:])
        out.append(path[:-1])  # missing element
        out.append(path[1:])
        if len(path) > 1 and path[0] != path[1]:
            out.append([path[1], path[0], *path[2:]])
    out.append(path + [hashlib.sha256(b"x").digest()])  # extra element
    out.append([hashlib.sha256(b"y").digest(), *path])
    return out


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_inclusion_property(size, data):
    leaves, t = tree_of(size)
    root = t.root()
    assert root == rfc9162.mth(leaves)
    rnd = data.draw(st.randoms(use_true_random=False))
    sub = data.draw(st.integers(1, size))
    sroot = t.root(sub)
    for i in sorted({0, sub - 1, data.draw(st.integers(0, sub - 1))}):
        lh = leaf_hash(leaves[i])
        p = t.inclusion_proof(i, sub)
        assert rfc9162.verify_inclusion(i, sub, lh, p, sroot)
        assert verify_inclusion(lh, i, sub, p, sroot)
        for bad in _tamperings(p, rnd):
            assert not rfc9162.verify_inclusion(i, sub, lh, bad, sroot)
            assert not verify_inclusion(lh, i, sub, bad, sroot)
        # wrong index, index >= size, wrong size: a proof of the wrong shape must fail; one of
        # the same shape may legitimately verify (it then proves a leaf of another tree with
        # the same root), so the two verifiers must at least agree
        for j, n in [(i + 1, sub), (i - 1, sub), (sub, sub), (sub + 5, sub), (i, sub + 1),
                     (i, sub - 1), (i, 2 * sub), (-1, sub), (0, 0)]:
            got = verify_inclusion(lh, j, n, p, sroot)
            assert got == rfc9162.verify_inclusion(j, n, lh, p, sroot)
            if not 0 <= j < n or path_len(j, n) != len(p):
                assert not got, (j, n)
        assert not verify_inclusion(leaf_hash(b"other"), i, sub, p, sroot)
        assert not rfc9162.verify_inclusion(i, sub, lh, p, leaf_hash(b"root"))


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_consistency_property(size, data):
    leaves, t = tree_of(size)
    rnd = data.draw(st.randoms(use_true_random=False))
    second = data.draw(st.integers(1, size))
    first = data.draw(st.integers(1, second))
    r1, r2 = t.root(first), t.root(second)
    p = t.consistency_proof(first, second)
    assert r1 == rfc9162.mth(leaves[:first]) and r2 == rfc9162.mth(leaves[:second])
    assert rfc9162.verify_consistency(first, second, r1, r2, p)
    assert verify_consistency(first, second, p, r1, r2)
    for bad in _tamperings(p, rnd):
        assert not rfc9162.verify_consistency(first, second, r1, r2, bad)
        assert not verify_consistency(first, second, bad, r1, r2)
    for f, s in [(first - 1, second), (first + 1, second), (first, second + 1),
                 (first, second - 1), (second + 1, second), (0, second)]:
        got = verify_consistency(f, s, p, r1, r2)
        assert got == rfc9162.verify_consistency(f, s, r1, r2, p), (f, s)
        if f > s or f == 0 or f == s or proof_len(f, s) != len(p):
            assert not got, (f, s)
    # a different, forked tree of the same size must not be provably consistent
    fork = MerkleTree([leaf_hash(d) for d in leaves[:first - 1] + [b"forked"]] +
                      [leaf_hash(d) for d in leaves[first:second]])
    assert not verify_consistency(first, second, p, fork.root(first), r2)
    assert not rfc9162.verify_consistency(first, second, fork.root(first), r2, p)


def test_appending_keeps_history_and_log_hashing(monkeypatch):
    data, t = tree_of(1000)
    old_roots = [t.root(n) for n in range(0, 1001, 37)]
    t.extend(leaf_hash(b"more-%d" % i) for i in range(1000))
    assert [t.root(n) for n in range(0, 1001, 37)] == old_roots
    # O(log n) hashing for any historical size: count node hashes per proof
    import lwas.runtime.merkle as m
    calls = []
    real = m.node_hash
    monkeypatch.setattr(m, "node_hash", lambda a, b: calls.append(1) or real(a, b))
    for n in (1999, 1537, 1001):
        for i in (0, n // 2, n - 1):
            calls.clear()
            t.inclusion_proof(i, n)
            assert len(calls) <= 2 * n.bit_length()
            calls.clear()
            t.consistency_proof(i + 1, n)
            assert len(calls) <= 2 * n.bit_length()
        calls.clear()
        t.root(n)
        assert len(calls) <= n.bit_length()
