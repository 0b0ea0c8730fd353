"""Where a service's start goes, and a start that does not grow with history.

A SQLite ledger of N transfers (examples/bank.lwas, one ledger) is filled quickly: rows built
directly with the ledger's own encoders (encode_value, encode_entry, leaf hashes, a signed
checkpoint every BATCH entries, as the writer's group commit leaves them), inserted in one
transaction. Then:

1. first start: a full replay of N entries (it also records the program's entry layouts, once),
   then one snapshot written (lwas.runtime.snapshot) and its cost;
2. TAIL more entries appended;
3. snapshot + tail start: the snapshot verified (signature, artifact, stored leaf hashes of its
   N entries against its signed digest), state and ledger index restored, TAIL entries replayed;
   time to ready, with where it went;
4. full replay start of N + TAIL entries (snapshots out of the way), for comparison; both
   starts must give the same state.

"Ready" is Service.start() returning: the writer runs and requests are served. Loading the
program (verify the artifact, map its native code) is constant and reported apart.

Run: .venv/bin/python bench/bench_start.py [N] [--tail T] [--dir DIR]
     (N default 1000000; about a minute of filling at 1M, most of it encoding rows)
"""
from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lwas.backend import keys  # noqa: E402
from lwas.driver import compile_file  # noqa: E402
from lwas.runtime import host, ledger as ledger_mod, merkle, schema, snapshot, state as state_mod  # noqa: E402
from lwas.runtime import store as store_mod  # noqa: E402
from lwas.runtime.checkpoint import key_name_for, sign_checkpoint  # noqa: E402
from lwas.runtime.ledger import encode_entry, encode_value  # noqa: E402
from lwas.runtime.loader import load_verified  # noqa: E402
from lwas.runtime.merkle import MerkleTree  # noqa: E402
from lwas.runtime.store import open_store  # noqa: E402
from lwas.runtime.values import Money  # noqa: E402

BANK = ROOT / "examples" / "bank.lwas"
BATCH = 1000  # entries per checkpoint (one group commit)
T0 = 1_767_225_600_000_000  # 2026-01-01 in µs


# ------------------------------------------------------------------------------ timing


class Timers:
    """Wall time spent in some functions (wrapped in place while the bench runs)."""

    def __init__(self):
        self.spent: dict[str, float] = defaultdict(float)
        self.undo: list = []

    def wrap(self, owner, attr: str, label: str) -> None:
        fn = getattr(owner, attr)
        spent = self.spent

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[label] += time.perf_counter() - t

        setattr(owner, attr, timed)
        self.undo.append((owner, attr, fn))

    def reset(self) -> None:
        self.spent.clear()

    def restore(self) -> None:
        for owner, attr, fn in reversed(self.undo):
            setattr(owner, attr, fn)


def timers() -> Timers:
    t = Timers()
    t.wrap(schema, "start_service", "schema: layouts checked and recorded")
    t.wrap(snapshot.FileShelf, "read", "snapshot: file read")
    t.wrap(snapshot, "unpack", "snapshot: signature and section digests")
    t.wrap(store_mod._Tx, "hashes", "store: keys and leaf hashes of the snapshot's entries")
    t.wrap(merkle.MerkleTree, "from_levels", "tree: levels from the snapshot")
    t.wrap(state_mod.KeptState, "restore_encoded", "state: read into native memory (lwas.backend.snapgen)")
    t.wrap(host.Service, "_replay", "replay: entries read, checked and folded (all of the below)")
    t.wrap(ledger_mod.Ledger, "load", "  replay: ledger checks (entry decoded, hashed, chained)")
    t.wrap(schema.Layouts, "native", "  replay: payloads read into memory form (transcode)")
    t.wrap(state_mod.KeptState, "apply", "  replay: `on` blocks (native calls)")
    t.wrap(ledger_mod.Ledger, "restore", "index: key -> seq of the snapshot's entries")
    t.wrap(snapshot, "sha256", "snapshot: digests (sections, stored leaf hashes)")
    t.wrap(host.Service, "_same_key", "checkpoint: newest signature and root")
    return t


# ------------------------------------------------------------------------------ filling


class Filler:
    """Appends rows to one ledger of a SQLite file, as the service's writer would have."""

    def __init__(self, path: str, ledger: str, origin: str, key, digest: bytes, entry_desc):
        self.path, self.ledger, self.origin, self.key, self.digest = path, ledger, origin, key, digest
        self.desc = entry_desc
        self.tree = MerkleTree()
        self.head = bytes(32)
        self.n = 0
        self.key_name = key_name_for(key.public_key())
        open_store(path).close()  # the schema

    def add(self, count: int) -> float:
        """Append `count` transfers; seconds taken."""
        t0 = time.perf_counter()
        c = sqlite3.connect(self.path, isolation_level=None)
        c.execute("PRAGMA synchronous=OFF")
        c.execute("BEGIN")
        enc_v, enc_e, sha = encode_value, encode_entry, hashlib.sha256
        rows, cps, pending = [], [], []
        for i in range(self.n, self.n + count):
            value = {"id": f"tx-{i:08d}", "account": f"acct-{i % 97}",
                     "amount": Money(100 + i % 9_900, "USD"), "kind": "Withdrawal" if i % 5 == 4 else "Deposit"}
            data = enc_e(i, T0 + i, self.digest, self.head, value["id"], enc_v(self.desc, value))
            self.head = sha(b"\x00" + data).digest()
            rows.append((self.ledger, i, value["id"], data, self.head))
            pending.append(self.head)
            if (i + 1) % BATCH == 0 or i + 1 == self.n + count:
                self.tree.extend(pending)
                pending.clear()
                cps.append((self.ledger, i + 1, sign_checkpoint(self.origin, i + 1, self.tree.root(), self.key,
                                                                 self.key_name)))
            if len(rows) >= 50_000:
                c.executemany("INSERT INTO entries (ledger, seq, key, entry, leaf) VALUES (?, ?, ?, ?, ?)", rows)
                rows.clear()
        c.executemany("INSERT INTO entries (ledger, seq, key, entry, leaf) VALUES (?, ?, ?, ?, ?)", rows)
        c.executemany("INSERT INTO checkpoints (ledger, tree_size, note) VALUES (?, ?, ?)", cps)
        c.execute("COMMIT")
        c.close()
        self.n += count
        return time.perf_counter() - t0

    def expected(self) -> dict:
        """The bank's state after self.n transfers, computed here (not by the service)."""
        bal = dep = 0
        for i in range(self.n):
            m = 100 + i % 9_900
            if i % 5 == 4:
                bal -= m
            else:
                bal += m
                dep += 1
        return {"balance": Money(bal, "USD"), "count": self.n, "deposits": dep}


# ------------------------------------------------------------------------------ the bench


MEMORY = r"""
import hashlib, sys, time
from lwas.backend import keys
from lwas.runtime.host import Service
from lwas.runtime.loader import load_verified
from lwas.runtime.snapshot import Policy
from lwas.runtime.store import open_store

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

art, key_path, db, snaps = sys.argv[1:]
key = keys.load_private(open(key_path, "rb").read())
data = open(art, "rb").read()
a, program = load_verified(data, [key.public_key()])
before = rss("VmRSS:")
st = open_store(db)
svc = Service(program, a.manifest["services"][0], st, key, hashlib.sha512(data).digest(),
              snapshots=Policy(0, 0, directory=snaps))
t0 = time.perf_counter()
svc.start()
ready = time.perf_counter() - t0
assert svc.restored is not None
print(f"ready in {ready:.3f} s; resident memory {rss('VmRSS:') - before:.0f} MB more than before the start "
      f"(peak {rss('VmHWM:'):.0f} MB for the whole process)")
svc.stop()
st.close()
"""


def start(program, desc, path: str, key, digest: bytes, policy: snapshot.Policy, t: Timers):
    t.reset()
    st = open_store(path)
    svc = host.Service(program, desc, st, key, digest, snapshots=policy)
    t0 = time.perf_counter()
    svc.start()
    ready = time.perf_counter() - t0
    return svc, st, ready, dict(t.spent)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("entries", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--tail", type=int, default=1000)
    ap.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    args = ap.parse_args()
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="lwas-bench-start-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.pop("LWAS_SNAPSHOT_DIR", None)
    try:
        key = keys.generate()
        t0 = time.perf_counter()
        c = compile_file(BANK, key=key)
        assert c.ok, c.diagnostics
        art, program = load_verified(c.artifact, [key.public_key()])
        digest = hashlib.sha512(c.artifact).digest()
        (desc,) = art.manifest["services"]
        print(f"program: compiled and loaded in {time.perf_counter() - t0:.2f} s (constant; not part of a start)")
        spec = desc["ledgers"][0]
        db = str(work / "bank.db")
        for p in Path(work).glob("bank.db*"):
            p.unlink() if p.is_file() else shutil.rmtree(p)
        filler = Filler(db, spec["name"], f"lwas/{desc['name']}/{spec['name']}", key, digest, spec["entry"])
        n, tail = args.entries, args.tail
        print(f"fill: {n} entries in {filler.add(n):.1f} s, {os.path.getsize(db) / 1e6:.0f} MB")

        t = timers()
        snaps = snapshot.Policy(every_entries=0, every_seconds=0, directory=str(work / "snapshots"))
        svc, st, ready, spent = start(program, desc, db, key, digest, snaps, t)
        print(f"1. first start, full replay of {n}: ready in {ready:.2f} s ({n / ready:,.0f} entries/s)")
        for label, s in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"      {s:8.3f} s  {label}")
        t1 = time.perf_counter()
        name, entries, size = snapshot.write(svc, svc.snapshots.shelf, snaps)
        print(f"   snapshot {name}: {entries} entries, {size / 1e6:.1f} MB, written in {time.perf_counter() - t1:.2f} s")
        svc.stop()
        st.close()

        print(f"2. tail: {tail} entries appended in {filler.add(tail):.2f} s")
        svc, st, ready_snap, spent = start(program, desc, db, key, digest, snaps, t)
        state_snap = svc.state
        assert svc.restored is not None and svc.replayed == tail, (svc.restored, svc.replayed)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"3. snapshot + tail start ({n} + {tail}): ready in {ready_snap:.3f} s")
        for label, s in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"      {s:8.3f} s  {label}")
        svc.stop()
        st.close()
        (work / "bank.lwasart").write_bytes(c.artifact)
        (work / "key.pem").write_bytes(keys.private_pem(key))
        out = subprocess.run([sys.executable, "-c", MEMORY, str(work / "bank.lwasart"), str(work / "key.pem"), db,
                              snaps.directory], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        print(f"   the same start in a fresh process: {out.stdout.strip()}")

        empty = snapshot.Policy(every_entries=0, every_seconds=0, directory=str(work / "no-snapshots"))
        svc, st, ready_full, spent = start(program, desc, db, key, digest, empty, t)
        state_full = svc.state
        print(f"4. full replay start ({n + tail}): ready in {ready_full:.2f} s ({(n + tail) / ready_full:,.0f} entries/s)")
        for label, s in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"      {s:8.3f} s  {label}")
        svc.stop()
        st.close()
        t.restore()
        want = filler.expected()
        assert state_snap == state_full == want, (state_snap, state_full, want)
        print(f"same state both ways, and as computed here: {want}")
        print(f"speed-up: {ready_full / ready_snap:.1f}x; peak RSS of this process {rss:.0f} MB")
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
