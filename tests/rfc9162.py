"""An independent RFC 9162 verifier for the tests, written from the RFC text (§2.1.3.2 and
§2.1.4.2, the iterative algorithms) and sharing no code with lwas.runtime.merkle, plus the naive
recursive MTH of §2.1.1 to check roots against.
"""
from __future__ import annotations

import hashlib


def H(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over raw leaf DATA, straight from the definition."""
    n = len(leaves)
    if n == 0:
        return H(b"")
    if n == 1:
        return H(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return H(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def verify_inclusion(leaf_index: int, tree_size: int, leaf: bytes, path: list[bytes],
                     root: bytes) -> bool:
    """§2.1.3.2 with `leaf` the leaf HASH."""
    if leaf_index >= tree_size or leaf_index < 0:
        return False
    fn, sn = leaf_index, tree_size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = H(b"\x01" + p + r)
            if not fn & 1:
                while not (fn & 1) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = H(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes,
                       path: list[bytes]) -> bool:
    """§2.1.4.2; the trivial cases (first 0 or first == second: empty proof) as Go's tlog does."""
    if first < 0 or first > second:
        return False
    if first == second:
        return not path and first_hash == second_hash
    if first == 0:
        return not path and first_hash == H(b"")
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = H(b"\x01" + c + fr)
            sr = H(b"\x01" + c + sr)
            if not fn & 1:
                while not (fn & 1) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = H(b"\x01" + sr + c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0
