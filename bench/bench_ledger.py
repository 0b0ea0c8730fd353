"""Ledger benchmark: in-memory staging+commit, SQLite group commit (synchronous=FULL) at 100 and
1000 entries per transaction, and `verify_store` on SQLite. Goals: >= 50k entries/s staged and
committed in memory, >= 300k entries/s verified.

    .venv/bin/python bench/bench_ledger.py [ENTRIES]
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lwas.runtime.ledger import Ledger, append_batch, encode_value
from lwas.runtime.store import open_store
from lwas.runtime.values import Money
from lwas.runtime.verify import verify_store

KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))
ART = hashlib.sha512(b"bench").digest()
DESC = {"record": "Transfer", "fields": [["from", "text"], ["to", "text"],
                                         ["amount", {"money": "USD"}], ["memo", "text"]]}


def payloads(n: int, tag: str) -> list[tuple[str, bytes]]:
    return [(f"{tag}-{i:08d}", encode_value(DESC, {"from": f"acct-{i % 977}", "to": f"acct-{i % 331}",
                                                   "amount": Money(i * 7 % 100_000, "USD"),
                                                   "memo": "invoice 2026-11"}))
            for i in range(n)]


def bench_memory(n: int) -> float:
    items = payloads(n, "m")
    lg = Ledger("bench", "lwas.bench/ledger", KEY)
    t0 = time.perf_counter()
    for b in range(0, n, 1000):
        for key, p in items[b:b + 1000]:
            if lg.check(key, p) == "new":
                lg.stage(key, p, 1, ART)
        lg.commit()
    dt = time.perf_counter() - t0
    assert lg.size == n
    return n / dt


def bench_sqlite(path: str, n: int, group: int) -> float:
    store = open_store(path)
    lg = Ledger(f"g{group}", "lwas.bench/ledger", KEY)
    items = payloads(n, f"g{group}")
    t0 = time.perf_counter()
    for b in range(0, n, group):
        append_batch(store, lg, items[b:b + group], 1, ART)
    dt = time.perf_counter() - t0
    store.close()
    return n / dt


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    print(f"ledger bench, {n} entries of a {len(payloads(1, 'x')[0][1])}-byte record payload")
    rate = bench_memory(n)
    print(f"  in-memory check+stage+commit: {rate:,.0f} entries/s  ({rate / 50_000:.1f}x the 50k goal)")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ledger.db")
        for group, count in [(100, 20_000), (1000, 100_000)]:
            r = bench_sqlite(path, count, group)
            print(f"  SQLite FULL, {group} entries/transaction (+1 signed checkpoint each): "
                  f"{r:,.0f} entries/s")
        store = open_store(path)
        lg = Ledger("big", "lwas.bench/ledger", KEY)
        items = payloads(n, "v")
        for b in range(0, n, 10_000):
            append_batch(store, lg, items[b:b + 10_000], 1, ART)
        store.close()
        from lwas.runtime.verify_parallel import jobs

        for j in sorted({1, jobs()}):
            rates = []
            for _ in range(3):
                report = verify_store(path, KEY.public_key(), jobs=j)
                assert report.ok, report.text()
                rates.append(report.entries / report.seconds)
            rate = sorted(rates)[1]
            print(f"  verify_store (SQLite, {j} process{'es' if j > 1 else ''}): {report.entries:,} entries, "
                  f"{report.checkpoints} checkpoints: median of 3 {rate:,.0f} entries/s "
                  f"({rate / 300_000:.2f}x the 300k goal)")
        t0 = time.perf_counter()
        store = open_store(path)
        rows = sum(1 for _ in store.read("big"))
        dt = time.perf_counter() - t0
        store.close()
        print(f"  store.read (SQLite): {rows / dt:,.0f} rows/s")


if __name__ == "__main__":
    main()
