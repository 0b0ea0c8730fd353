"""RFC 6962 / RFC 9162 Merkle tree over ledger entries.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), split at the largest power
of two below n, empty tree = SHA-256(""). The tree keeps every level of complete, aligned
subtrees (hash i of level k covers leaves [i*2^k, (i+1)*2^k)), so appending is amortised one hash and
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
    """An append-only tree of leaf hashes; every method works for any size <= len(self).

    levels[k] is a bytearray holding the 32-byte hashes of the complete, aligned subtrees of 2^k
    leaves, in order (levels[0]: the leaf hashes): a tree of a million leaves is 64 MB in some
    twenty flat arrays, not two million objects. Appends only add to the end of each level, so
    the tree at any size s <= len(self) is the first s >> k hashes of each level k: `levels_at`
    gives them and `from_levels` takes them back (ledger snapshots, lwas.runtime.snapshot).
    """

    __slots__ = ("levels",)

    def __init__(self, leaves=None):
        self.levels: list[bytearray] = [bytearray()]
        if leaves:
            self.extend(leaves)

    def __len__(self) -> int:
        return len(self.levels[0]) >> 5

    def leaf(self, index: int) -> bytes:
        """The leaf hash at `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"leaf index {index} out of range for tree size {len(self)}")
        return bytes(self.levels[0][index << 5:(index + 1) << 5])

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash; completes the aligned subtrees it closes (amortised one hash)."""
        if len(leaf) != 32:
            raise ValueError("a leaf hash is 32 bytes")
        levels = self.levels
        row = levels[0]
        row += leaf
        k = 0
        while not (len(row) >> 5) & 1:
            k += 1
            if k == len(levels):
                levels.append(bytearray())
            up = levels[k]
            up += sha256(b"\x01" + row[-64:]).digest()
            row = up

    def extend(self, leaves) -> None:
        """Add many leaf hashes (an iterable of 32-byte hashes, or their concatenation): each
        level is completed in one pass (about twice as fast as appending one by one)."""
        blob = leaves if isinstance(leaves, (bytes, bytearray)) else b"".join(leaves)
        if len(blob) & 31:
            raise ValueError("leaf hashes are 32 bytes each")
        levels = self.levels
        levels[0] += blob
        k = 0
        while len(levels[k]) >= 64:
            if k + 1 == len(levels):
                levels.append(bytearray())
            row, up = levels[k], levels[k + 1]
            have, want = len(up) >> 5, len(row) >> 6
            if have < want:
                mv = memoryview(row)
                try:
                    up += b"".join([sha256(b"\x01" + mv[i:i + 64]).digest()
                                    for i in range(have << 6, want << 6, 64)])
                finally:
                    mv.release()
            k += 1

    def levels_at(self, size: int | None = None) -> list[bytes]:
        """The tree of the first `size` leaves, level by level (level k: size >> k hashes)."""
        size = self._check(size)
        return [bytes(self.levels[k][:(size >> k) << 5]) for k in range(size.bit_length())]

    @classmethod
    def from_levels(cls, levels: list[bytes]) -> "MerkleTree":
        """The tree whose levels are `levels`, as `levels_at` gives them. Only their shape is
        checked: the caller vouches for the hashes (e.g. a signed snapshot whose leaves equal
        the stored ones)."""
        t = cls()
        if not levels or not levels[0]:
            if any(levels):
                raise ValueError("tree levels above an empty level of leaves")
            return t
        size = len(levels[0]) >> 5
        if len(levels[0]) & 31 or [len(x) for x in levels] != [(size >> k) << 5 for k in range(size.bit_length())]:
            raise ValueError("tree levels do not have the shape of a tree over their leaves")
        t.levels = [bytearray(x) for x in levels]
        return t

    def _check(self, size: int | None) -> int:
        if size is None:
            return len(self)
        if not 0 <= size <= len(self):
            raise ValueError(f"tree size {size} out of range 0..{len(self)}")
        return size

    def _node(self, k: int, i: int) -> bytes:
        """Hash of the aligned subtree i of 2^k leaves."""
        return bytes(self.levels[k][i << 5:(i + 1) << 5])

    def _hash(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end), end > start; start is aligned to the range's split."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            k = n.bit_length() - 1
            return self._node(k, start >> k)
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
                stack.append(self._node(k, (n >> k) - 1))
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
