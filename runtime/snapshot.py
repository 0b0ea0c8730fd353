"""Snapshots of a service's state, so that a start does not replay the whole ledger.

A service's state is a fold of its `on` blocks over its ledger entries (lwas.runtime.host). Every
N entries or T seconds the runtime writes a **snapshot**: the committed state, and for each of
the service's ledgers the size and Merkle root it is the fold of. A start then loads the newest
snapshot that verifies and replays only the entries after it.

What binds a snapshot (all under one Ed25519 signature by the service's ledger key, the key
that signs its checkpoints):

- the service name and the SHA-512 digest of the artifact whose `on` blocks made the state (an
  artifact of another program version folds entries differently: its snapshots are ignored and
  the new version replays from the start, once, then snapshots its own state);
- per ledger: its tree size, its Merkle root at that size, and the SHA-256 of the concatenated
  leaf hashes of those entries; the service's `last_time` (new entries go after it);
- the SHA-256 and length of every section of the body.

File format "LWSNAP1" (big-endian):

    b"LWSNAP1\\n" | u32 n | header: n bytes of JSON (sorted keys) | u32 m | signature: m bytes
              | body: the sections, in the header's order

The signature is Ed25519 over b"lwas-snapshot/v1\\n" + header (m = 0: unsigned). The header:
{"format": "lwas-snapshot", "version": 1, "service", "artifact" (hex), "key" (the signing key's
C2SP name, lwas-xxxxxxxx), "last_time" (µs), "created" (RFC 3339, informational), "ledgers":
[{"name", "size", "root" (hex), "leaves" (hex SHA-256 of the size leaf hashes)}], "sections":
[[name, length, hex SHA-256], ...]}. Sections: "state", the state encoded with the ledger's value
encoding (lwas.runtime.ledger.encode_value with the service's state TypeDesc, so it is exactly as
canonical as an entry payload), then "tree:LEDGER" per ledger: the Merkle tree's levels 1, 2, ...
at that size (level k holds size >> k hashes), so a start need not re-hash the tree. The state
section is written and read by native code straight from and into the kept state
(lwas.backend.snapgen, lwas.runtime.snapcodec: a million economy transactions in ~0.2 s and ~0.5 s),
byte for byte what encode_value gives; an artifact without that code goes through Python values.

A snapshot is used only if it verifies: its magic and lengths parse, it is signed, by this
service's key, the signature holds, it names this service and this artifact, every section
matches its signed digest, and for every ledger the store holds at least `size` entries whose
stored leaf hashes (lwas.runtime.store keeps each entry's leaf hash beside it) hash to the
signed digest — and the signed tree over those leaves has the signed root. Anything else is
ignored with one log line saying which snapshot and why, and the next older snapshot is tried,
then a replay from the start. The entries after the snapshot are then loaded with every check
a full load makes (decoded, re-hashed, chained to the snapshot's last leaf hash, stored leaf
hash compared), and folded into the restored state.

Where snapshots live:

- SQLite: files beside the database, in `DB-snapshots/` (or LWAS_SNAPSHOT_DIR), named
  `SERVICE-LASTTIME.lwsnap`; each written to a temporary file, fsynced, renamed into place and
  the directory fsynced, so a crash (kill -9 included) leaves either the old set of files or the
  new one plus, at worst, a temporary file that the next start removes. Files, not a table: a
  large snapshot written into the SQLite file would hold its one write lock, and every request
  would wait for it.
- PostgreSQL: the `snapshots` table of the database every replica shares (one replica's
  snapshot serves them all), written on the snapshot thread's own connection in autocommit,
  outside the writers' advisory lock; or files, when LWAS_SNAPSHOT_DIR is set.

The newest `keep` (3) per service are kept. Writing is off the writer thread: the writer only
notices that one is due; the snapshot thread pins the committed state (immutable: the writer
replaces it, never changes it) together with the ledger sizes at one instant, under the
service's lock, and converts, encodes, signs and writes it while the writer goes on.
"""
from __future__ import annotations

import json
import logging
import os
import re
import struct
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from hashlib import sha256

from lwas.runtime.checkpoint import key_name_for
from lwas.runtime.merkle import MerkleTree

log = logging.getLogger("lwas.snapshot")

MAGIC = b"LWSNAP1\n"
SIGNED = b"lwas-snapshot/v1\n"  # what the signature covers: this, then the header bytes
FORMAT, VERSION = "lwas-snapshot", 1
SUFFIX = ".lwsnap"
CHUNK = 1 << 20  # bytes per write(2) of a snapshot file
_U32 = struct.Struct(">I")

DEFAULT_EVERY_ENTRIES = 10_000
DEFAULT_EVERY_SECONDS = 300.0
DEFAULT_KEEP = 3
RETRY_SECONDS = 30.0  # after a failed write, wait this long before the next attempt


class Rejected(Exception):
    """Why a snapshot is not used (one line)."""


# ------------------------------------------------------------------------------ policy


@dataclass
class Policy:
    """When to write snapshots and how many to keep. every_entries / every_seconds = 0 turn that
    trigger off; both 0: no snapshot is written (existing ones are still used at start)."""

    every_entries: int = DEFAULT_EVERY_ENTRIES
    every_seconds: float = DEFAULT_EVERY_SECONDS
    keep: int = DEFAULT_KEEP
    directory: str | None = None  # files here (any store); None: beside a SQLite file, or a table

    @property
    def writes(self) -> bool:
        return self.every_entries > 0 or self.every_seconds > 0

    @classmethod
    def from_env(cls, env=os.environ, every_entries: int | None = None, every_seconds: float | None = None,
                 keep: int | None = None, directory: str | None = None) -> "Policy":
        """LWAS_SNAPSHOT_EVERY_ENTRIES, LWAS_SNAPSHOT_EVERY_SECONDS, LWAS_SNAPSHOT_KEEP and
        LWAS_SNAPSHOT_DIR, unless given here (e.g. from ServeConfig). ValueError when one is not
        a number >= 0 (keep: >= 1)."""

        def number(name, given, default, kind):
            if given is not None:
                v = given
            else:
                text = env.get(name, "").strip()
                if not text:
                    return default
                try:
                    v = kind(text)
                except ValueError:
                    raise ValueError(f"{name} must be a number >= 0, got {text!r}") from None
            if not v >= 0:  # NaN too
                raise ValueError(f"{name} must be >= 0, got {v!r}")
            return kind(v)

        k = number("LWAS_SNAPSHOT_KEEP", keep, DEFAULT_KEEP, int)
        if k < 1:
            raise ValueError(f"LWAS_SNAPSHOT_KEEP must be at least 1, got {k}")
        return cls(every_entries=number("LWAS_SNAPSHOT_EVERY_ENTRIES", every_entries, DEFAULT_EVERY_ENTRIES, int),
                   every_seconds=number("LWAS_SNAPSHOT_EVERY_SECONDS", every_seconds, DEFAULT_EVERY_SECONDS, float),
                   keep=k, directory=directory if directory is not None else (env.get("LWAS_SNAPSHOT_DIR") or None))


# ------------------------------------------------------------------------------ where they live


class FileShelf:
    """Snapshot files in one directory: SERVICE-LASTTIME.lwsnap, written atomically."""

    def __init__(self, directory: str):
        self.directory = directory

    def __str__(self) -> str:
        return self.directory

    def _final(self, service: str, taken: int) -> str:
        return os.path.join(self.directory, f"{service}-{taken:020d}{SUFFIX}")

    def list(self, service: str) -> list[tuple[int, str]]:
        """(taken, name) of the service's snapshots, newest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        pat = re.compile(re.escape(service) + r"-(\d{20})" + re.escape(SUFFIX) + "$")
        out = [(int(m.group(1)), n) for n in names if (m := pat.match(n))]
        return sorted(out, reverse=True)

    def read(self, name: str) -> bytes | None:
        try:
            with open(os.path.join(self.directory, name), "rb") as f:
                return f.read()
        except FileNotFoundError:  # pruned by another process since we listed it
            return None

    def write(self, service: str, taken: int, parts: list[bytes]) -> str:
        """Temporary file, fsync, rename into place, fsync the directory: the snapshot's name."""
        d = self.directory
        if not os.path.isdir(d):
            os.makedirs(d, mode=0o700, exist_ok=True)
            _fsync_dir(os.path.dirname(os.path.abspath(d)))
        final = self._final(service, taken)
        tmp = os.path.join(d, f".{service}-{taken:020d}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for part in parts:
                mv = memoryview(part)
                for i in range(0, len(mv), CHUNK):
                    _write_all(fd, mv[i:i + CHUNK])
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(d)
        return os.path.basename(final)

    def prune(self, service: str, keep: int) -> None:
        for _, name in self.list(service)[keep:]:
            _unlink(os.path.join(self.directory, name))

    def sweep(self, service: str) -> None:
        """Remove temporary files that a writer which no longer runs left behind (a crash)."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        pat = re.compile(r"\." + re.escape(service) + r"-\d{20}\.(\d+)\.\d+\.tmp$")
        for n in names:
            m = pat.match(n)
            if m and not _alive(int(m.group(1))):
                _unlink(os.path.join(self.directory, n))


class TableShelf:
    """Snapshots in the `snapshots` table of a PostgreSQL store (lwas.runtime.store)."""

    def __init__(self, store):
        self.store = store

    def __str__(self) -> str:
        return "the snapshots table"

    def list(self, service: str) -> list[tuple[int, str]]:
        return [(t, f"{service}-{t:020d}") for t in self.store.snapshot_list(service)]

    def read(self, name: str) -> bytes | None:
        service, _, taken = name.rpartition("-")
        return self.store.snapshot_read(service, int(taken))

    def write(self, service: str, taken: int, parts: list[bytes]) -> str:
        self.store.snapshot_write(service, taken, b"".join(parts))
        return f"{service}-{taken:020d}"

    def prune(self, service: str, keep: int) -> None:
        self.store.snapshot_prune(service, keep)

    def sweep(self, service: str) -> None:
        pass  # a transaction that did not commit left nothing


def shelf_for(store, policy: Policy):
    """Where this store's snapshots live, or None (a store kind we cannot keep them beside)."""
    if policy.directory:
        return FileShelf(policy.directory)
    if hasattr(store, "snapshot_list"):
        return TableShelf(store)
    path = getattr(store, "path", None)
    if isinstance(path, str) and path and path != ":memory:" and not path.startswith("file:"):
        return FileShelf(path + "-snapshots")
    return None


def _write_all(fd: int, data) -> None:
    while len(data):
        n = os.write(fd, data)
        data = data[n:]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------ the format


def _header_bytes(header: dict) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def pack(header: dict, sections: list[tuple[str, bytes]], private_key) -> list[bytes]:
    """The snapshot's bytes, as parts to write in order (the sections are not copied)."""
    header = dict(header, sections=[[n, len(b), sha256(b).hexdigest()] for n, b in sections])
    hb = _header_bytes(header)
    sig = private_key.sign(SIGNED + hb) if private_key is not None else b""
    return [MAGIC + _U32.pack(len(hb)) + hb + _U32.pack(len(sig)) + sig] + [b for _, b in sections]


@dataclass
class Snapshot:
    header: dict
    sections: dict  # name -> memoryview of its bytes

    @property
    def last_time(self) -> int:
        return self.header["last_time"]


def unpack(data: bytes, public_key, service: str, artifact: bytes) -> Snapshot:
    """The verified snapshot, or Rejected saying why it cannot be used (before the store is
    consulted: see check_ledgers)."""
    mv = memoryview(data)
    if len(data) < len(MAGIC) + 8 or bytes(mv[:len(MAGIC)]) != MAGIC:
        raise Rejected("damaged: not a snapshot (bad magic or truncated)")
    at = len(MAGIC)
    n = _U32.unpack_from(data, at)[0]
    at += 4
    if at + n + 4 > len(data):
        raise Rejected("damaged: truncated header")
    hb = bytes(mv[at:at + n])
    at += n
    m = _U32.unpack_from(data, at)[0]
    at += 4
    if at + m > len(data):
        raise Rejected("damaged: truncated signature")
    sig = bytes(mv[at:at + m])
    at += m
    try:
        header = json.loads(hb)
        if not isinstance(header, dict):
            raise ValueError("not an object")
    except ValueError as e:
        raise Rejected(f"damaged: the header is not JSON ({e})") from None
    ours = key_name_for(public_key)
    if not sig:
        raise Rejected("unsigned")
    if header.get("key") != ours:
        raise Rejected(f"signed by another key ({header.get('key')!r}), not this service's key ({ours})")
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(sig, SIGNED + hb)
    except InvalidSignature:
        raise Rejected(f"bad signature: the header does not verify with this service's key ({ours}); "
                       "damaged or forged") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise Rejected(f"written in format {header.get('format')!r} version {header.get('version')!r}, "
                       f"this runtime reads {FORMAT!r} version {VERSION}")
    if header.get("service") != service:
        raise Rejected(f"belongs to service {header.get('service')!r}, not {service!r}")
    if header.get("artifact") != artifact.hex():
        raise Rejected(f"made by another artifact ({str(header.get('artifact'))[:16]}…), not the one served "
                       f"({artifact.hex()[:16]}…): its `on` blocks may fold entries differently")
    try:
        sections = {}
        for name, length, digest in header["sections"]:
            if at + length > len(data):
                raise Rejected(f"damaged: section {name!r} is truncated")
            part = mv[at:at + length]
            if sha256(part).hexdigest() != digest:
                raise Rejected(f"damaged: section {name!r} does not match its signed digest")
            sections[name] = part
            at += length
        if at != len(data):
            raise Rejected(f"damaged: {len(data) - at} bytes after the last section")
        if not isinstance(header["last_time"], int) or "state" not in sections:
            raise Rejected("damaged: no state or no last_time")
        for l in header["ledgers"]:
            if not (isinstance(l["name"], str) and isinstance(l["size"], int) and l["size"] >= 0
                    and f"tree:{l['name']}" in sections):
                raise Rejected(f"damaged: bad ledger record {l!r}")
    except (KeyError, TypeError, ValueError) as e:
        raise Rejected(f"damaged: malformed header ({type(e).__name__}: {e})") from None
    return Snapshot(header, sections)


def _levels(size: int, blob) -> list[bytes]:
    """Levels 1.. of a tree of `size` leaves from their concatenation (level k: size >> k)."""
    out, at = [], 0
    for k in range(1, size.bit_length()):
        n = (size >> k) << 5
        out.append(bytes(blob[at:at + n]))
        at += n
    if at != len(blob):
        raise Rejected("damaged: a tree section does not have the shape of its ledger's size")
    return out


def check_ledgers(snap: Snapshot, ledgers, tx) -> list[tuple[list[str], MerkleTree]]:
    """For each ledger (in the service's order): the keys and the Merkle tree of its first
    `size` entries, read from the store (leaf hashes, not entries) and checked against the
    snapshot; Rejected if the store does not hold exactly the snapshot's entries."""
    from lwas.runtime.store import MissingEntries

    by_name = {l["name"]: l for l in snap.header["ledgers"]}
    names = [lg.name for lg in ledgers]
    if sorted(by_name) != sorted(names) or len(by_name) != len(snap.header["ledgers"]):
        raise Rejected(f"covers ledgers {sorted(by_name)}, the service has {sorted(names)}")
    out = []
    for lg in ledgers:
        rec = by_name[lg.name]
        size = rec["size"]
        try:
            keys, leaves = tx.hashes(lg.name, size)
        except MissingEntries as e:
            raise Rejected(f"the store does not hold its entries: {e}") from None
        if sha256(leaves).hexdigest() != rec["leaves"]:
            raise Rejected(f"ledger {lg.name!r} in the store holds other entries than the snapshot: the leaf "
                           f"hashes of its entries 0..{size - 1} do not match (root {rec['root'][:16]}…)")
        try:
            tree = MerkleTree.from_levels([leaves] + _levels(size, snap.sections[f"tree:{lg.name}"]))
        except ValueError as e:
            raise Rejected(f"damaged: ledger {lg.name!r}: {e}") from None
        if tree.root().hex() != rec["root"]:
            raise Rejected(f"damaged: the tree of ledger {lg.name!r} does not have the signed root")
        out.append((keys, tree))
    return out


# ------------------------------------------------------------------------------ start


@dataclass
class Loaded:
    name: str  # which snapshot
    entries: int  # entries it covers
    last_time: int
    seconds: float


def load_newest(service, shelf, tx) -> Loaded | None:
    """Restore the service from the newest snapshot that verifies (its ledgers' prefixes and its
    state); None when there is none (the caller replays from the start). Each one passed over is
    logged once, with the reason. Runs inside the start transaction `tx`."""
    if shelf is None:
        return None
    try:
        shelf.sweep(service.name)
        listed = shelf.list(service.name)
    except Exception as e:  # noqa: BLE001 - an unreadable directory is no reason not to start
        log.warning("service %s: snapshots in %s not readable (%s); replaying the ledger", service.name, shelf, e)
        return None
    for _, name in listed:
        t0 = time.perf_counter()
        try:
            data = shelf.read(name)
            if data is None:
                continue
            snap = unpack(data, service.public_key, service.name, service.digest)
            prefixes = check_ledgers(snap, service.ledgers, tx)
        except Rejected as r:
            log.warning("service %s: snapshot %s ignored: %s", service.name, name, r)
            continue
        except Exception as e:  # noqa: BLE001 - a store error here is not the snapshot's fault
            log.warning("service %s: snapshot %s ignored: cannot be checked (%s: %s)", service.name, name,
                        type(e).__name__, e)
            continue
        try:
            service.restore_snapshot(bytes(snap.sections["state"]), prefixes, snap.last_time)
        except ValueError as e:
            log.warning("service %s: snapshot %s ignored: damaged: the state does not decode as %s's state (%s)",
                        service.name, name, service.name, e)
            service.reset_ledgers()
            continue
        except Exception as e:  # noqa: BLE001 - e.g. a state the native side refuses
            log.warning("service %s: snapshot %s ignored: its state cannot be restored (%s: %s)", service.name,
                        name, type(e).__name__, e)
            service.reset_ledgers()
            continue
        return Loaded(name, sum(len(t) for _, t in prefixes), snap.last_time, time.perf_counter() - t0)
    return None


# ------------------------------------------------------------------------------ writing


def write(service, shelf, policy: Policy) -> tuple[str, int, int] | None:
    """Take and write one snapshot of the service's committed state: (name, entries, bytes), or
    None when there is nothing to snapshot (no entry yet)."""
    state, (cut, last_time) = service.snapshot_state(at=service.cut)
    total = sum(size for _, size in cut)
    if not total:
        return None
    ledgers, sections = [], [("state", state)]
    for lg, size in cut:  # a tree's prefix never changes: read off the lock
        levels = lg.tree.levels_at(size)
        leaves = levels[0] if levels else b""
        root = lg.tree.root(size)
        ledgers.append({"name": lg.name, "size": size, "root": root.hex(), "leaves": sha256(leaves).hexdigest()})
        sections.append((f"tree:{lg.name}", b"".join(levels[1:])))
    header = {"format": FORMAT, "version": VERSION, "service": service.name, "artifact": service.digest.hex(),
              "key": key_name_for(service.public_key), "last_time": last_time, "ledgers": ledgers,
              "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    parts = pack(header, sections, service.signing_key)
    name = shelf.write(service.name, last_time, parts)
    shelf.prune(service.name, policy.keep)
    return name, total, sum(len(p) for p in parts)


class Snapshotter:
    """Decides when a snapshot is due (on the writer thread: `note`) and writes it on a thread
    of its own."""

    def __init__(self, service, shelf, policy: Policy):
        self.service, self.shelf, self.policy = service, shelf, policy
        self.base = 0  # entries covered by the last snapshot written or loaded
        self.last = time.monotonic()
        self.not_before = 0.0
        self.busy = False
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.written = 0
        self.failed = 0

    @property
    def active(self) -> bool:
        return self.shelf is not None and self.policy.writes

    def start(self, base: int) -> None:
        self.base = base
        self.last = time.monotonic()
        if self.active:
            self.thread = threading.Thread(target=self._run, name=f"lwas-snapshot-{self.service.name}", daemon=True)
            self.thread.start()

    def note(self, total: int) -> None:
        """On the writer thread, after the ledgers moved (or while idle): `total` committed entries."""
        if not self.active or self.busy:
            return
        new = total - self.base
        if new <= 0:
            return
        now = time.monotonic()
        p = self.policy
        if now < self.not_before:
            return
        if (p.every_entries and new >= p.every_entries) or (p.every_seconds and now - self.last >= p.every_seconds):
            self.busy = True
            self.wake.set()

    def _run(self) -> None:
        stopping = self.service.stopping
        while not stopping.is_set():
            if not self.wake.wait(timeout=1.0):
                continue
            self.wake.clear()
            if stopping.is_set():
                break
            self.write_now()

    def write_now(self):
        """Write one snapshot now, on this thread (the snapshot thread, or a test)."""
        t0 = time.perf_counter()
        try:
            out = write(self.service, self.shelf, self.policy)
        except Exception as e:  # noqa: BLE001 - a failed snapshot costs only a longer start
            self.failed += 1
            self.not_before = time.monotonic() + RETRY_SECONDS
            log.error("service %s: snapshot not written to %s: %s: %s", self.service.name, self.shelf,
                      type(e).__name__, e)
            return None
        finally:
            self.last = time.monotonic()
            self.busy = False
        if out is not None:
            name, entries, size = out
            self.base = max(self.base, entries)
            self.written += 1
            log.info("service %s: snapshot %s written (%d entries, %d bytes, %.3f s)", self.service.name, name,
                     entries, size, time.perf_counter() - t0)
        return out

    def stop(self, timeout: float = 10.0) -> None:
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout)
