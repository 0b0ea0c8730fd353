"""`ledger verify` on several cores: the same audit as lwas.runtime.verify, split into chunks.

A ledger of n entries is cut into chunks of C = 2^k entries (the last one shorter). A worker
process re-derives one chunk from its raw rows: every row's seq, magic, own seq and key, the
prev-hash chain inside the chunk, the leaf hashes, and the Merkle subtree stacks at the chunk's
end and at every checkpoint size inside it. Because C is a power of two and chunks are aligned,
the RFC 6962 stack of a prefix of j*C + r entries is the stack of the j full chunks' roots
followed by the chunk's own stack after r entries, so the parent folds the chunks' results into
every checkpoint's root, checks the chain across chunk boundaries and every signature.

This path only ever says "intact". At the first thing it cannot vouch for (a bad row, a broken
link, a root that differs, checkpoints past the end, an unsigned tail) it hands the ledger to
the sequential verifier, which names the first bad entry exactly as it always has: one
diagnosis, written once.
"""
from __future__ import annotations

import bisect
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from hashlib import sha256
from struct import Struct

from lwas.runtime.ledger import HEADER, MAGIC, ZERO_HASH
from lwas.runtime.store import open_store

CHUNK = 1 << 15  # entries per task: a task costs a connection and a query; many tasks share the cores evenly
MIN_ENTRIES = 200_000  # below this, starting processes costs more than it saves

_SEQ, _U32 = Struct(">Q"), Struct(">I")


def chunk_result(url: str, ledger: str, start: int, end: int, marks: tuple[int, ...]):
    """(prev hash of the first row, hash of the last row, the chunk's Merkle stack at its end,
    {size: stack} at each mark) for entries start..end-1, or None at anything unexpected."""
    store = open_store(url, create=False)
    try:
        return _fold(store.read(ledger, start - 1, end), start, end, frozenset(marks))
    finally:
        store.close()


def _fold(rows, start: int, end: int, marks: frozenset):
    hsize = HEADER.size
    seq_at, u32_at = _SEQ.unpack_from, _U32.unpack_from
    expected, first_prev, prev = start, None, None
    stack: list[bytes] = []
    at: dict[int, list[bytes]] = {}
    for seq, key, data in rows:
        kb = key.encode()
        if (seq != expected or not data.startswith(MAGIC) or len(data) < hsize or seq_at(data, 4)[0] != seq
                or u32_at(data, 116)[0] != len(kb) or not data.startswith(kb, hsize)):
            return None
        if prev is None:
            first_prev = data[84:116]
        elif not data.startswith(prev, 84):
            return None
        prev = sha256(b"\x00" + data).digest()
        expected += 1
        push(stack, prev, expected - start)  # start is a multiple of the chunk: merges as globally
        if expected in marks:
            at[expected] = list(stack)
    if expected != end:
        return None
    return first_prev, prev, stack, at


def jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def pool(workers: int) -> ProcessPoolExecutor:
    """Fork when this process runs one thread (the CLI: fast and safe), else a fork server."""
    method = "fork" if threading.active_count() == 1 else "forkserver"
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))


def verify_chunked(url: str, ledger: str, size: int, cps: list[tuple[int, str]], check_cp, root,
                   executor, chunk: int | None = None) -> tuple[int, int] | None:
    """(entries, last signed size) when the ledger is intact, else None (the caller then runs the
    sequential verifier). `cps`: the checkpoints, ascending by tree size. `check_cp(size, note,
    root, last_good, last_key)` is the sequential verifier's checkpoint check; it raises on a bad
    checkpoint, which also sends the ledger there."""
    chunk = chunk or CHUNK
    assert chunk & (chunk - 1) == 0, "chunks must be a power of two"
    notes = dict(cps)
    if len(notes) != len(cps) or (cps and cps[-1][0] > size):
        return None  # two notes for one size, or checkpoints past the end (entries deleted)
    sizes = [c for c, _ in cps]
    tasks = []
    for start in range(0, size, chunk):
        end = min(start + chunk, size)
        marks = tuple(sizes[bisect.bisect_right(sizes, start):bisect.bisect_right(sizes, end)])
        tasks.append((url, ledger, start, end, marks))
    results = list(executor.map(chunk_result, *zip(*tasks))) if tasks else []
    if any(r is None for r in results):
        return None
    prefix: list[bytes] = []  # the stack of the full chunks so far
    head = ZERO_HASH
    last_good = 0
    if 0 in notes:
        check_cp(0, notes[0], root([]), 0, None)
    for (_, _, start, end, marks), (first_prev, last, stack, at) in zip(tasks, results):
        if first_prev != head:
            return None
        for m in marks:
            check_cp(m, notes[m], root(prefix + at[m]), last_good, None)
            last_good = m
        head = last
        if end - start == chunk:  # a full chunk's stack is its root: one node of the chunk level
            push(prefix, stack[0], end // chunk)
    return size, last_good


def push(stack: list[bytes], node: bytes, count: int) -> None:
    """Appends `node` to an RFC 6962 stack of perfect subtrees, as the `count`-th node of its
    level, and merges equal-sized neighbours (one per trailing zero bit of count)."""
    stack.append(node)
    while not count & 1:
        r = stack.pop()
        stack[-1] = sha256(b"\x01" + stack[-1] + r).digest()
        count >>= 1
