"""Service state that scales: the economy's request cost and replay against the size of its state.

For each size N (days in the state; one transaction per distinct day, as issue 14 measured),
the economy service (services/economy.lwas) is filled through its own writer (group commit into
SQLite), then:

- POST /transaction: p50 of a durable append (guards, native handler with the state by
  reference, SQLite commit with synchronous=FULL, signed checkpoint), one at a time;
- GET /equity and GET /metrics (30 days): p50 of the read, against the committed state;
- replay: a cold start of a new service on the same ledger (entries/s to ready; snapshots off);
- memory: the state's live native bytes per state entry (after a compaction).

Then the restart issue 14 names: BENCH_REPLAY_ENTRIES (default 1,000,000) transactions over a
tenth as many days, started cold (every entry folded: entries/s, wall and CPU time of this
process, which the shared machine's other load does not inflate) and from a snapshot written
after them (time to ready).

Requests run in process (Service.call / Service.read): this measures the runtime's own cost,
which is what grows with the state; HTTP adds a constant (bench_service.py measures it).
Sizes: BENCH_STATE_SIZES (default "10,10000,100000"; issue 14 asks for 1000000 too: about two
minutes of filling here). The figures for the ratio largest/smallest go in docs/performance.md.

Run: .venv/bin/python bench/bench_state.py
"""
from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lwas.backend import keys  # noqa: E402
from lwas.driver import compile_file  # noqa: E402
from lwas.runtime.host import Service  # noqa: E402
from lwas.runtime.loader import load_verified  # noqa: E402
from lwas.runtime.snapshot import Policy  # noqa: E402
from lwas.runtime.store import open_store  # noqa: E402
from lwas.runtime.values import Money  # noqa: E402

SIZES = [int(x) for x in os.environ.get("BENCH_STATE_SIZES", "10,10000,100000").split(",")]
SAMPLES = int(os.environ.get("BENCH_STATE_SAMPLES", "300"))
REPLAY_ENTRIES = int(os.environ.get("BENCH_REPLAY_ENTRIES", "1000000"))
OFF = Policy(every_entries=0, every_seconds=0)  # no snapshot unless written by hand
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def tx(i: int, day: int) -> dict:
    return {"id": f"tx{i:09d}", "amount": Money(1999, "USD"), "currency": "USD",
            "timestamp": EPOCH + timedelta(days=day, hours=12), "tx_type": "Payment", "metadata": "{}"}


def route(desc: dict, method: str, path: str) -> dict:
    return next(r for r in desc["routes"] if r["method"] == method and r["path"] == path)


def fill(svc: Service, n: int, per_day: int = 1) -> float:
    """n transactions, per_day on each day, through the writer (batched by group commit): seconds."""
    append = {"append": (0, None), "method": "APPEND", "path": "transactions"}
    left = [n]
    done = threading.Event()

    def finished(r):
        if isinstance(r, BaseException):
            raise r
        left[0] -= 1
        if left[0] == 0:
            done.set()

    t0 = time.perf_counter()
    # days before 2024-10, where the benchmark's own requests come later (from 0087-06 on: a
    # million days do not fit before 2024 in the calendar, and then run on past it)
    start_day = max(-700_000, 20_000 - -(-n // per_day))
    today = (datetime.now(timezone.utc) - EPOCH).days
    window = range(today - 100, today + 2)  # GET /metrics sums the last 2 x 30 days: kept empty
    for i in range(n):
        day = start_day + i // per_day
        if day >= window.start:  # at every size the metrics read the same (empty) days
            day += len(window)
        svc.submit({**append, "append": (0, tx(i, day))}, (), finished)
        if i % 20_000 == 19_999:  # keep the queue bounded: at most 5,000 waiting
            deadline = time.monotonic() + 600
            while (i + 1) - (n - left[0]) > 5_000 and time.monotonic() < deadline:
                time.sleep(0.01)
    if not done.wait(3600):
        raise TimeoutError("filling the ledger did not finish")
    return time.perf_counter() - t0


def p50_us(f, samples: int = SAMPLES) -> float:
    times = []
    for i in range(samples):
        t0 = time.perf_counter_ns()
        f(i)
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000


def main() -> None:
    key = keys.generate()
    c = compile_file(str(ROOT / "services" / "economy.lwas"), key=key)
    assert c.ok, c.diagnostics
    art, program = load_verified(c.artifact, [key.public_key()])
    desc = art.manifest["services"][0]
    post = route(desc, "POST", "/transaction")
    equity = route(desc, "GET", "/equity")
    metrics = route(desc, "GET", "/metrics")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            db = str(Path(tmp) / f"economy-{n}.db")
            store = open_store(db)
            svc = Service(program, desc, store, key, bytes(64), settings={}, snapshots=OFF)
            svc.start()
            fill_s = fill(svc, n)
            base = 10_000_000 + n

            def do_post(i):
                svc.call(post, (tx(base + i, 20_000 + i % 300),))

            post_us = p50_us(do_post)
            equity_us = p50_us(lambda i: svc.read(equity, ()))
            metrics_us = p50_us(lambda i: svc.read(metrics, ()), max(SAMPLES // 3, 30))
            svc.kept.compact()
            live = svc.kept.live
            entries = sum(l.size for l in svc.ledgers)
            svc.stop()
            store.close()
            gc.collect()
            store = open_store(db)
            t0 = time.perf_counter()
            again = Service(program, desc, store, key, bytes(64), settings={}, snapshots=OFF)
            again.start()
            replay_s = time.perf_counter() - t0
            assert again.read(equity, ())["total_equity"] == Money(1999 * entries, "USD")
            again.stop()
            store.close()
            rows.append((n, fill_s, post_us, equity_us, metrics_us, entries / replay_s, replay_s,
                         live / max(n, 1)))
            print(f"days={n:>9,}  fill {n / fill_s:>9,.0f}/s  POST p50 {post_us:8.0f} us  "
                  f"GET /equity p50 {equity_us:6.0f} us  GET /metrics p50 {metrics_us:6.0f} us  "
                  f"replay {entries / replay_s:>9,.0f} entries/s ({replay_s:.2f} s)  "
                  f"state {live / max(n, 1):6.0f} B/day", flush=True)
        small, large = rows[0], rows[-1]
        print(f"\nlargest/smallest ({large[0]:,} vs {small[0]:,} days): POST {large[2] / small[2]:.2f}x, "
              f"GET /equity {large[3] / small[3]:.2f}x, GET /metrics {large[4] / small[4]:.2f}x (goal <= 1.5)")
        if REPLAY_ENTRIES:
            restart(program, desc, key, equity, str(Path(tmp) / "economy-replay.db"), REPLAY_ENTRIES, c.artifact)


def restart(program, desc, key, equity, db: str, n: int, artifact: bytes) -> None:
    """n transactions over n/10 days, then two starts, each in a process of its own (a restart
    is a new process: nothing of the filling one's heap or caches): a cold start (every entry
    folded), which then writes a snapshot, and a start from that snapshot."""
    store = open_store(db)
    svc = Service(program, desc, store, key, bytes(64), settings={}, snapshots=OFF)
    svc.start()
    fill_s = fill(svc, n, per_day=10)
    svc.stop()
    store.close()
    art, pem = Path(db + ".lwasart"), Path(db + ".key.pem")
    art.write_bytes(artifact)
    pem.write_bytes(keys.private_pem(key))
    cold, warm = (_start_in_child(db, art, pem, mode) for mode in ("cold", "warm"))
    assert cold["replayed"] == n and cold["equity"] == warm["equity"] == str(Money(1999 * n, "USD"))
    assert warm["restored"]
    print(f"\nrestart, {n:,} entries over {-(-n // 10):,} days (filled at {n / fill_s:,.0f}/s): "
          f"cold replay {n / cold['wall']:,.0f} entries/s ({cold['wall']:.1f} s; {n / cold['cpu']:,.0f}/s of its "
          f"CPU), state {cold['live'] / n:.0f} B/entry; snapshot written in {cold['snapshot']:.2f} s, "
          f"start from it ready in {warm['wall']:.2f} s")


def _start_in_child(db: str, art: Path, pem: Path, mode: str) -> dict:
    import json
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--start", mode, db, str(art), str(pem)],
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_once(mode: str, db: str, art: str, pem: str) -> None:
    """The child's side: start the economy on db (cold: snapshots off; warm: from the newest
    snapshot) and print what it took as JSON; a cold start then writes a snapshot."""
    import json

    key = keys.load_private(pem)
    artifact, program = load_verified(Path(art).read_bytes(), [key.public_key()])
    desc = artifact.manifest["services"][0]
    store = open_store(db)
    policy = OFF if mode == "cold" else Policy(0, 0, keep=1)
    t0, c0 = time.perf_counter(), time.process_time()
    svc = Service(program, desc, store, key, bytes(64), settings={}, snapshots=policy)
    svc.start()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    got = {"wall": wall, "cpu": cpu, "replayed": svc.replayed, "restored": svc.restored is not None,
           "equity": str(svc.read(route(desc, "GET", "/equity"), ())["total_equity"])}
    if mode == "cold":
        svc.kept.compact()
        got["live"] = svc.kept.live
        t0 = time.perf_counter()
        svc.snapshots.write_now()
        got["snapshot"] = time.perf_counter() - t0
    svc.stop()
    store.close()
    print(json.dumps(got))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--start"]:
        start_once(*sys.argv[2:6])
    else:
        main()
