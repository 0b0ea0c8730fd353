"""RFC 6962 / RFC 9162 Merkle tree over ledger entries.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), split at the largest power
of two below n, empty tree = SHA-256(""). The tree keeps every level of complete, aligned
subtrees (levels[k][i] covers leaves [i*2^k, (i+1)*2^k)), so appending is amortised one hash and
any historical root, inclusion proof or consistency proof needs O(log n) hashes: along a proof
path at most one incomplete subtree is hashed recursively, the rest are cached level nodes.

The verifiers here mirror the proof construction recursively; the tests check them (and the
proofs) against an independent copy of RFC 9162's iterative algorithms.
"""
from __future__ import annotations

from hashlib import sha256

EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only tree of leaf hashes; every method works for any size <= len(self)."""

    __slots__ = ("levels",)

    def __init__(self, leaves: list[bytes] | None = None):
        self.levels: list[list[bytes]] = [[]]
        for h in leaves or ():
            self.append(h)

    def __len__(self) -> int:
        return len(self.levels[0])

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash; completes the aligned subtrees it closes (amortised one hash)."""
        levels = self.levels
        row = levels[0]
        row.append(leaf)
        k = 0
        while not len(row) & 1:
            k += 1
            if k == len(levels):
                levels.append([])
            up = levels[k]
            up.append(sha256(b"\x01" + row[-2] + row[-1]).digest())
            row = up

    def extend(self, leaves) -> None:
        for h in leaves:
            self.append(h)

    def _check(self, size: int) -> int:
        if size is None:
            return len(self)
        if not 0 <= size <= len(self):
            raise ValueError(f"tree size {size} out of range 0..{len(self)}")
        return size

    def _hash(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end), end > start; start is aligned to the range's split."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            k = n.bit_length() - 1
            return self.levels[k][start >> k]
        k = _split(n)
        return node_hash(self._hash(start, start + k), self._hash(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        size = self._check(size)
        return self._hash(0, size) if size else EMPTY_ROOT

    def root_after(self, leaves: list[bytes]) -> bytes:
        """Root of this tree with `leaves` appended, without appending them (O(log n + k))."""
        n = len(self)
        stack: list[bytes] = []
        for k in range(n.bit_length() - 1, -1, -1):  # the frontier: complete subtrees, big first
            if n >> k & 1:
                stack.append(self.levels[k][(n >> k) - 1])
        for h in leaves:
            stack.append(h)
            n += 1
            m = n
            while not m & 1:
                r = stack.pop()
                stack[-1] = node_hash(stack[-1], r)
                m >>= 1
        if not stack:
            return EMPTY_ROOT
        r = stack[-1]
        for h in reversed(stack[:-1]):
            r = node_hash(h, r)
        return r

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Audit path (leaf to root order) of leaf `index` in the tree of `size` leaves."""
        size = self._check(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} out of range for tree size {size}")
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                path.append(self._hash(start + k, end))
                end = start + k
            else:
                path.append(self._hash(start, start + k))
                start += k
        path.reverse()
        return path

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.2 PROOF(first, D[second]); empty when first is 0 or first == second."""
        second = self._check(second)
        if not 0 <= first <= second:
            raise ValueError(f"bad consistency range {first}..{second}")
        if first == 0 or first == second:
            return []
        path: list[bytes] = []
        m, start, end, whole = first, 0, second, True
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                path.append(self._hash(start + k, end))
                end = start + k
            else:
                path.append(self._hash(start, start + k))
                start += k
                m -= k
                whole = False
        if not whole:
            path.append(self._hash(start, end))
        path.reverse()
        return path


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """True iff `path` proves leaf hash `leaf` at `index` in the tree of `size` with `root`."""
    if not (isinstance(index, int) and isinstance(size, int)) or not 0 <= index < size:
        return False
    if len(path) > 64 or any(len(p) != 32 for p in path):
        return False
    it = iter(reversed(path))  # the root-level sibling comes last

    def walk(m: int, n: int) -> bytes | None:
        if n == 1:
            return leaf
        sib = next(it, None)
        if sib is None:
            return None
        k = _split(n)
        if m < k:
            sub = walk(m, k)
            return None if sub is None else node_hash(sub, sib)
        sub = walk(m - k, n - k)
        return None if sub is None else node_hash(sib, sub)

    got = walk(index, size)
    return got is not None and next(it, None) is None and got == root


def verify_consistency(first: int, second: int, path: list[bytes], first_root: bytes,
                       second_root: bytes) -> bool:
    """True iff `path` proves the tree of `first` leaves (first_root) is a prefix of `second`."""
    if not (isinstance(first, int) and isinstance(second, int)) or not 0 <= first <= second:
        return False
    if len(path) > 128 or any(len(p) != 32 for p in path):
        return False
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    if first == second:
        return not path and first_root == second_root
    it = iter(reversed(path))

    def walk(m: int, n: int, whole: bool) -> tuple[bytes, bytes] | None:
        if m == n:
            if whole:
                return first_root, first_root
            h = next(it, None)
            return None if h is None else (h, h)
        sib = next(it, None)
        if sib is None:
            return None
        k = _split(n)
        if m <= k:
            sub = walk(m, k, whole)
            return None if sub is None else (sub[0], node_hash(sub[1], sib))
        sub = walk(m - k, n - k, False)
        return None if sub is None else (node_hash(sib, sub[0]), node_hash(sib, sub[1]))

    got = walk(first, second, True)
    return got is not None and next(it, None) is None and got == (first_root, second_root)
