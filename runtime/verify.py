"""Offline audit of a ledger store: `lwasc ledger verify DB|URL --pubkey PUB [--jobs N]`.

For every ledger it re-derives everything from the raw rows: seq continuity, each entry's own
seq and key against its row, the prev-hash chain, the Merkle root at every stored checkpoint's
size and every checkpoint's Ed25519 signature. It stops at the first bad entry in seq order.

Blame: when entry s does not carry the hash of entry s-1, either s-1 was altered or s was. The
next entry decides: if it still carries the hash of s, s is intact and s-1 is named. Entries past
the last signed checkpoint are reported too: the chain alone is only hashes, so anyone can append
well-chained rows; only a signature makes them the writer's (the writer stores a checkpoint in
the same transaction as its entries). Pass allow_unsigned_tail=True to accept such a tail.

Large ledgers are first checked on several processes (lwas.runtime.verify_parallel), which can
only vouch that a ledger is intact; anything else is named by the sequential pass below.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from struct import Struct

from lwas.runtime.checkpoint import NotSignedBy, parse_checkpoint
from lwas.runtime.ledger import HEADER, MAGIC, ZERO_HASH
from lwas.runtime.merkle import EMPTY_ROOT
from lwas.runtime.store import open_store

_SEQ, _U32 = Struct(">Q"), Struct(">I")


@dataclass
class Problem:
    ledger: str
    seq: int | None  # the first bad entry (None: no entry to name, e.g. a bad checkpoint)
    key: str | None
    reason: str
    wrong_key: bool = False  # the checkpoints are another key's: nothing is known to be altered


@dataclass
class Report:
    ok: bool
    entries: int = 0
    checkpoints: int = 0
    ledgers: dict = field(default_factory=dict)  # name -> {"entries", "checkpoints", "unsigned"}
    problem: Problem | None = None
    seconds: float = 0.0

    def text(self) -> str:
        if self.problem and self.problem.wrong_key:
            p = self.problem
            return (f"WRONG KEY: ledger {p.ledger!r}: {p.reason}; verify with the public key of the key "
                    f"that signed it")
        if self.problem:
            p = self.problem
            where = f"seq {p.seq}" if p.seq is not None else "checkpoints"
            key = f" key {p.key!r}" if p.key is not None else ""
            return f"TAMPERED: ledger {p.ledger!r} {where}{key}: {p.reason}"
        per = ", ".join(f"{n}: {v['entries']} entries / {v['checkpoints']} checkpoints"
                        + (f" / {v['unsigned']} past the last checkpoint" if v["unsigned"] else "")
                        for n, v in self.ledgers.items())
        return (f"OK: {len(self.ledgers)} ledgers, {self.entries} entries, {self.checkpoints} "
                f"signed checkpoints verified in {self.seconds:.2f} s" + (f" ({per})" if per else ""))


class _Bad(Exception):
    def __init__(self, seq, key, reason, wrong_key: bool = False):
        self.seq, self.key, self.reason, self.wrong_key = seq, key, reason, wrong_key


def verify_store(url: str, public_key, allow_unsigned_tail: bool = False, jobs: int | None = None,
                 min_parallel: int | None = None) -> Report:
    """Check every ledger in the store at `url`; the Report names the first bad entry if any.
    Ledgers of at least `min_parallel` entries (verify_parallel.MIN_ENTRIES) are checked by
    `jobs` processes (default: the cores this process may use; 1: never in parallel)."""
    from lwas.runtime import verify_parallel as vp

    t0 = time.perf_counter()
    store = open_store(url, create=False)
    report = Report(ok=True)
    jobs = vp.jobs() if jobs is None else jobs
    least = vp.MIN_ENTRIES if min_parallel is None else min_parallel
    executor = None
    try:
        for name in store.ledgers():
            try:
                done = None
                size = store.next_seq(name) if jobs > 1 else 0
                if jobs > 1 and size >= least:
                    executor = executor or vp.pool(jobs)
                    done = _verify_fast(store, url, name, size, public_key, allow_unsigned_tail, executor)
                n, c, unsigned = done or _verify_ledger(store, name, public_key, allow_unsigned_tail)
            except _Bad as bad:
                report.ok = False
                report.problem = Problem(name, bad.seq, bad.key, bad.reason, bad.wrong_key)
                break
            report.ledgers[name] = {"entries": n, "checkpoints": c, "unsigned": unsigned}
            report.entries += n
            report.checkpoints += c
    finally:
        store.close()
        if executor is not None:
            executor.shutdown()
    report.seconds = time.perf_counter() - t0
    return report


def _root(stack: list[bytes]) -> bytes:
    if not stack:
        return EMPTY_ROOT
    r = stack[-1]
    for h in reversed(stack[:-1]):
        r = sha256(b"\x01" + h + r).digest()
    return r


class _Checkpoints:
    """Checks a ledger's checkpoints one by one: signature, size, one origin, the root."""

    def __init__(self, public_key):
        self.key = public_key
        self.origin = None

    def check(self, size: int, note: str, root: bytes, last_good: int, last_key) -> None:
        try:
            cp_origin, cp_size, cp_root = parse_checkpoint(note, self.key)
        except NotSignedBy as e:
            if self.origin is None:  # the first one: none of this ledger's checkpoints are the key's
                by = ", ".join(e.signers) or "no key"
                raise _Bad(None, None, f"its checkpoints are signed by {by}, not by {e.key} (the key "
                                       f"given)", wrong_key=True) from None
            raise _Bad(None, None, f"checkpoint at tree size {size}: {e}") from None
        except ValueError as e:
            raise _Bad(None, None, f"checkpoint at tree size {size}: {e}") from None
        if cp_size != size:
            raise _Bad(None, None, f"checkpoint stored at tree size {size} signs size {cp_size}")
        if self.origin is not None and cp_origin != self.origin:
            raise _Bad(None, None, f"checkpoint at tree size {size} has origin {cp_origin!r}, "
                                   f"earlier ones {self.origin!r}")
        self.origin = cp_origin
        if cp_root != root:
            raise _Bad(size - 1, last_key,
                       f"Merkle root at signed tree size {size} differs: entries "
                       f"{last_good}..{size - 1} were rewritten (the chain is consistent, so at "
                       f"least the last one)")


def _verify_fast(store, url: str, name: str, size: int, public_key, allow_unsigned_tail: bool,
                 executor) -> tuple[int, int, int] | None:
    """The ledger (`size`: one past its highest seq) checked on several cores
    (lwas.runtime.verify_parallel) when it is intact; None when anything is not, for the
    sequential verifier to name."""
    from lwas.runtime.verify_parallel import verify_chunked

    cps = store.checkpoints(name)
    try:
        done = verify_chunked(url, name, size, cps, _Checkpoints(public_key).check, _root, executor)
    except _Bad:
        return None
    if done is None or (done[1] < done[0] and not allow_unsigned_tail):
        return None
    return done[0], len(cps), done[0] - done[1]


def _verify_ledger(store, name: str, public_key,
                   allow_unsigned_tail: bool) -> tuple[int, int, int]:
    """(entries, checkpoints, entries past the last checkpoint); raises _Bad at the first fault."""
    cps = store.checkpoints(name)  # ascending tree_size
    ci = 0
    check_cp = _Checkpoints(public_key).check

    while ci < len(cps) and cps[ci][0] == 0:
        check_cp(0, cps[ci][1], EMPTY_ROOT, 0, None)
        ci += 1

    expected = 0
    head = ZERO_HASH
    stack: list[bytes] = []
    hsize = HEADER.size
    last_good = 0
    prev_key = None
    suspect = None  # (seq s-1, key s-1, seq s, key s, hash of s): a chain break to resolve
    next_cp = cps[ci][0] if ci < len(cps) else -1
    seq_at, u32_at = _SEQ.unpack_from, _U32.unpack_from
    for seq, key, data in store.read(name):
        kb = key.encode()
        if (suspect is not None or seq != expected or not data.startswith(MAGIC)
                or len(data) < hsize or seq_at(data, 4)[0] != seq
                or not data.startswith(head, 84) or u32_at(data, 116)[0] != len(kb)
                or not data.startswith(kb, hsize)):
            _diagnose(seq, key, data, expected, suspect)  # raises unless only prev differs
        h = sha256(b"\x00" + data).digest()
        if not data.startswith(head, 84):
            if seq == 0:
                raise _Bad(seq, key, "first entry has a non-zero prev hash")
            suspect = (seq - 1, prev_key, seq, key, h)
        head = h
        prev_key = key
        stack.append(h)
        expected += 1
        n = expected
        while not n & 1:
            r = stack.pop()
            stack[-1] = sha256(b"\x01" + stack[-1] + r).digest()
            n >>= 1
        if expected == next_cp and suspect is None:  # a pending break is resolved first
            check_cp(expected, cps[ci][1], _root(stack), last_good, key)
            last_good = expected
            ci += 1
            next_cp = cps[ci][0] if ci < len(cps) else -1
    if suspect is not None:
        s1, k1, s, k, _ = suspect
        raise _Bad(s, k, f"prev hash does not match entry {s1} (one of the two was altered)")
    if ci < len(cps):
        try:
            parse_checkpoint(cps[ci][1], public_key)
        except ValueError as e:
            raise _Bad(None, None, f"checkpoint at tree size {cps[ci][0]}: {e}") from None
        raise _Bad(expected, None, f"checkpoint signs tree size {cps[ci][0]} but the ledger has "
                                   f"only {expected} entries: entries were deleted")
    if expected > last_good and not allow_unsigned_tail:
        first = next(iter(store.read(name, last_good - 1)))
        raise _Bad(first[0], first[1], f"entries {last_good}..{expected - 1} are not covered by "
                                       f"any signed checkpoint (forged or unsigned)")
    return expected, len(cps), expected - last_good


def _diagnose(seq: int, key: str, data: bytes, expected: int, suspect) -> None:
    """The slow path: say exactly what is wrong with this row (or with a pending chain break)."""
    if suspect is not None:
        s1, k1, s, k, hs = suspect
        if len(data) >= HEADER.size and data[84:116] == hs:
            raise _Bad(s1, k1, f"entry changed: its hash no longer matches the prev hash "
                               f"recorded by entry {s}")
        raise _Bad(s, k, f"prev hash does not match entry {s1}")
    if seq != expected:
        if seq > expected:
            raise _Bad(seq, key, f"entries missing before it: expected seq {expected}")
        raise _Bad(seq, key, f"out of order: expected seq {expected}")
    if len(data) < HEADER.size or data[:4] != MAGIC:
        raise _Bad(seq, key, "not an LWE1 entry")
    _, eseq, _, _, _, klen = HEADER.unpack_from(data)
    if eseq != seq:
        raise _Bad(seq, key, f"entry bytes carry seq {eseq}: rows reordered or moved")
    if data[HEADER.size:HEADER.size + klen] != key.encode():
        raise _Bad(seq, key, "entry bytes carry a different key than its row")
    # only the prev hash differs: the caller records a suspect and resolves it on the next row


def load_public_key(path: str):
    """An Ed25519 public key from a PEM SubjectPublicKeyInfo file."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    with open(path, "rb") as f:
        key = load_pem_public_key(f.read())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def verify_command(db: str, pubkey_path: str, fmt: str = "text", out=None,
                   allow_unsigned_tail: bool = False, jobs: int | None = None) -> int:
    """Exit code: 0 all good, 1 tampering or bad signatures, 2 cannot open the store or key, or
    the ledger is another key's (nothing can be said of it with this one)."""
    out = out or sys.stdout
    try:
        key = load_public_key(pubkey_path)
    except (OSError, ValueError) as e:
        print(f"error: cannot read public key: {e}", file=sys.stderr)
        return 2
    try:
        report = verify_store(db, key, allow_unsigned_tail, jobs)
    except Exception as e:  # an unreachable server, a missing or non-SQLite file, ...
        print(f"error: cannot open ledger store {db}: {e}", file=sys.stderr)
        return 2
    if fmt == "json":
        print(json.dumps(asdict(report), indent=2), file=out)
    else:
        print(report.text(), file=out)
    if report.ok:
        return 0
    return 2 if report.problem is not None and report.problem.wrong_key else 1
