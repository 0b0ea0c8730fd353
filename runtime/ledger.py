"""Ledger entries (a fixed byte encoding) and one named ledger held in memory.

Entry bytes, big-endian, version "LWE1":

    b"LWE1" | u64 seq | i64 time (µs since epoch) | 64-byte artifact SHA-512 digest
            | 32-byte prev = leaf hash of entry seq-1 (zeros for seq 0)
            | u32 len(key) | key (UTF-8) | payload

The chain hash of an entry is its RFC 6962 leaf hash, SHA-256(0x00 || entry): one hash per entry
both links the chain and feeds the Merkle tree. Entries are hashed as these canonical bytes,
never as JSON, so equal values always have equal hashes.

Payload = encode_value(desc, value), also big-endian and canonical (decode rejects anything
encode would not produce): int, time -> i64 (time as µs since epoch); float, truth -> f64 (no
NaN); bool -> 1 byte 0/1; enum -> u16 length + variant name; money -> i64 minor + 3 ASCII
currency letters; text -> u32 length + UTF-8; array -> u32 count + elements; map -> u32 count +
(key, value) pairs in strictly ascending LwaS key order (lwas.runtime.values.map_order); record ->
its fields in declaration order; unit -> nothing (arrays of such zero-size values hold at most
2^16).

The payload is positional: it is read with the layout (entry TypeDesc) of the program that wrote
it. Every entry names that program (the artifact digest in its header), and the store records
each artifact's layout per ledger, so a later program version reads older entries by converting
them (lwas.runtime.schema: fields added with a default, variants added).
"""
from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from typing import NamedTuple

from lwas.runtime.checkpoint import key_name_for, sign_checkpoint
from lwas.runtime.merkle import MerkleTree
from lwas.runtime.values import Money, map_order, micros_to_time, sorted_items, time_to_micros

MAGIC = b"LWE1"
HEADER = struct.Struct(">4sQq64s32sI")  # magic, seq, time, artifact, prev, key length
ZERO_HASH = bytes(32)
MAX_EMPTY_ITEMS = 1 << 16  # arrays of zero-size values (unit, empty records) are capped
_I64, _F64, _U32, _U16 = struct.Struct(">q"), struct.Struct(">d"), struct.Struct(">I"), struct.Struct(">H")


# ---------------------------------------------------------------------------------------------
# payload values


def encode_value(desc, value) -> bytes:
    out: list[bytes] = []
    _enc(desc, value, out)
    return b"".join(out)


def _enc(desc, v, out: list) -> None:
    if isinstance(desc, str):
        if desc == "int":
            if type(v) is not int:
                raise ValueError(f"int expected, got {v!r}")
            out.append(_pack(_I64, v))
        elif desc in ("float", "truth"):
            if type(v) not in (float, int) or isinstance(v, bool):
                raise ValueError(f"{desc} expected, got {v!r}")
            if math.isnan(v):
                raise ValueError(f"{desc} must not be NaN")
            out.append(_F64.pack(float(v)))
        elif desc == "bool":
            if type(v) is not bool:
                raise ValueError(f"bool expected, got {v!r}")
            out.append(b"\x01" if v else b"\x00")
        elif desc == "text":
            if type(v) is not str:
                raise ValueError(f"text expected, got {v!r}")
            b = v.encode("utf-8")
            out.append(_U32.pack(len(b)) + b)
        elif desc == "time":
            if not isinstance(v, datetime):
                raise ValueError(f"time expected, got {v!r}")
            out.append(_pack(_I64, time_to_micros(v)))
        elif desc == "unit":
            if v is not None:
                raise ValueError(f"unit expected, got {v!r}")
        else:
            raise ValueError(f"unknown type {desc!r}")
    elif "money" in desc:
        if not isinstance(v, Money) or type(v.minor) is not int:
            raise ValueError(f"money expected, got {v!r}")
        cur = _currency(v.currency)
        if desc["money"] is not None and v.currency != desc["money"]:
            raise ValueError(f"money in {desc['money']} expected, got {v.currency}")
        out.append(_pack(_I64, v.minor) + cur)
    elif "array" in desc:
        if type(v) is not list:
            raise ValueError(f"array expected, got {v!r}")
        if len(v) > MAX_EMPTY_ITEMS and min_size(desc["array"]) == 0:
            raise ValueError(f"more than {MAX_EMPTY_ITEMS} zero-size array elements")
        out.append(_U32.pack(len(v)))
        for x in v:
            _enc(desc["array"], x, out)
    elif "map" in desc:
        if type(v) is not dict:
            raise ValueError(f"map expected, got {v!r}")
        for k in v:  # a key of another type is refused before it is compared
            _enc(desc["map"], k, [])
        items = sorted_items(desc, v)
        out.append(_U32.pack(len(items)))
        for k, x in items:
            _enc(desc["map"], k, out)
            _enc(desc["value"], x, out)
    elif "enum" in desc:
        if type(v) is not str or v not in desc["variants"]:
            raise ValueError(f"variant of {desc['enum']} expected, got {v!r}")
        b = v.encode("utf-8")
        out.append(_U16.pack(len(b)) + b)
    elif "record" in desc:
        fields = desc["fields"]
        if type(v) is not dict or len(v) != len(fields):
            raise ValueError(f"record {desc['record']} expected, got {v!r}")
        for name, t in fields:
            if name not in v:
                raise ValueError(f"record {desc['record']}: missing field {name}")
            _enc(t, v[name], out)
    else:
        raise ValueError(f"unknown type {desc!r}")


def _pack(s: struct.Struct, v: int) -> bytes:
    try:
        return s.pack(v)
    except struct.error:
        raise ValueError(f"{v} does not fit in 64 bits") from None


def _currency(code) -> bytes:
    b = code.encode("ascii", "replace") if isinstance(code, str) else b""
    if len(b) != 3 or not b.isalpha() or not b.isupper():
        raise ValueError(f"not a currency code: {code!r}")
    return b


def min_size(desc) -> int:
    """The fewest bytes any value of `desc` encodes to."""
    if isinstance(desc, str):
        return {"int": 8, "float": 8, "truth": 8, "time": 8, "bool": 1, "text": 4}.get(desc, 0)
    if "money" in desc:
        return 11
    if "array" in desc or "map" in desc:
        return 4
    if "enum" in desc:
        return 2
    if "record" in desc:
        return sum(min_size(t) for _, t in desc["fields"])
    return 0


def decode_value(desc, data: bytes):
    """Exact inverse of encode_value; ValueError on truncated, trailing or non-canonical bytes."""
    data = bytes(data)
    try:
        v, end = _dec(desc, data, 0)
    except (struct.error, IndexError, UnicodeDecodeError, OverflowError) as e:
        raise ValueError(f"bad encoding of {desc!r}: {e}") from None
    if end != len(data):
        raise ValueError(f"{len(data) - end} trailing bytes after {desc!r}")
    return v


def _same(x):
    return x


def _take(data: bytes, at: int, n: int) -> bytes:
    if at + n > len(data):
        raise ValueError("truncated value")
    return data[at:at + n]


def _dec(desc, d: bytes, at: int):
    if isinstance(desc, str):
        if desc == "int":
            return _I64.unpack_from(d, at)[0], at + 8
        if desc in ("float", "truth"):
            x = _F64.unpack_from(d, at)[0]
            if math.isnan(x):
                raise ValueError(f"{desc} is NaN")
            return x, at + 8
        if desc == "bool":
            b = _take(d, at, 1)[0]
            if b > 1:
                raise ValueError(f"bool byte {b}")
            return b == 1, at + 1
        if desc == "text":
            n = _U32.unpack_from(d, at)[0]
            return _take(d, at + 4, n).decode("utf-8"), at + 4 + n
        if desc == "time":
            return micros_to_time(_I64.unpack_from(d, at)[0]), at + 8
        if desc == "unit":
            return None, at
        raise ValueError(f"unknown type {desc!r}")
    if "money" in desc:
        minor = _I64.unpack_from(d, at)[0]
        cur = _take(d, at + 8, 3)
        code = _currency(cur.decode("ascii"))
        if desc["money"] is not None and cur.decode() != desc["money"]:
            raise ValueError(f"money in {desc['money']} expected, got {cur.decode()}")
        return Money(minor, code.decode()), at + 11
    if "array" in desc:
        n = _U32.unpack_from(d, at)[0]
        at += 4
        least = min_size(desc["array"])  # a forged count must not make us loop or allocate
        if n * least > len(d) - at or (least == 0 and n > MAX_EMPTY_ITEMS):
            raise ValueError(f"array count {n} exceeds the remaining bytes")
        items = []
        for _ in range(n):
            x, at = _dec(desc["array"], d, at)
            items.append(x)
        return items, at
    if "map" in desc:
        n = _U32.unpack_from(d, at)[0]
        at += 4
        kd, vd = desc["map"], desc["value"]
        if n * (min_size(kd) + min_size(vd)) > len(d) - at:
            raise ValueError(f"map count {n} exceeds the remaining bytes")
        order = map_order(desc) or _same
        m, last = {}, None
        for i in range(n):
            k, at = _dec(kd, d, at)
            rank = order(k)
            if i and not last < rank:  # strictly ascending: no duplicate, one order
                raise ValueError(f"map keys out of order at {k!r}")
            last = rank
            m[k], at = _dec(vd, d, at)
        return m, at
    if "enum" in desc:
        n = _U16.unpack_from(d, at)[0]
        name = _take(d, at + 2, n).decode("utf-8")
        if name not in desc["variants"]:
            raise ValueError(f"{name!r} is not a variant of {desc['enum']}")
        return name, at + 2 + n
    if "record" in desc:
        rec = {}
        for name, t in desc["fields"]:
            rec[name], at = _dec(t, d, at)
        return rec, at
    raise ValueError(f"unknown type {desc!r}")


# ---------------------------------------------------------------------------------------------
# entries


class Entry(NamedTuple):
    """One decoded entry (a tuple: replay decodes millions, and a tuple is the cheapest to make)."""

    seq: int
    time_micros: int
    artifact: bytes  # SHA-512 digest of the signed artifact that wrote it
    prev: bytes  # leaf hash of entry seq-1
    key: str
    payload: bytes


def encode_entry(seq: int, time_micros: int, artifact: bytes, prev: bytes, key: str,
                 payload: bytes) -> bytes:
    if len(artifact) != 64 or len(prev) != 32:
        raise ValueError("artifact digest must be 64 bytes and prev 32 bytes")
    k = key.encode("utf-8")
    try:
        return HEADER.pack(MAGIC, seq, time_micros, artifact, prev, len(k)) + k + payload
    except struct.error as e:
        raise ValueError(f"entry field out of range: {e}") from None


def decode_entry(data: bytes) -> Entry:
    data = bytes(data)
    if len(data) < HEADER.size:
        raise ValueError("entry shorter than its header")
    magic, seq, t, art, prev, klen = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"entry magic {magic!r} is not {MAGIC!r}")
    end = HEADER.size + klen
    if end > len(data):
        raise ValueError("entry key runs past its end")
    try:
        key = data[HEADER.size:end].decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("entry key is not UTF-8") from None
    return Entry(seq, t, art, prev, key, data[end:])


def _key_of(data: bytes) -> str:
    """The key an entry's bytes carry, or "?" when they are not an entry."""
    try:
        return decode_entry(data).key
    except ValueError:
        return "?"


class LedgerError(ValueError):
    """Stored rows that do not form one chain; names the offending seq and key."""

    def __init__(self, seq: int, key: str, reason: str):
        super().__init__(f"ledger entry seq {seq} key {key!r}: {reason}")
        self.seq, self.key, self.reason = seq, key, reason


def _chain_break(broken, next_links: bool) -> None:
    """Raise the LedgerError of a chain break: row `seq` (key) does not carry the leaf hash of
    row seq-1 as its prev hash. If the row after it links to it (next_links), row seq is intact
    and it is seq-1 that was changed (its stored leaf hash recomputed to match); if it does not,
    or there is no row after it, say both."""
    seq, key, key_before = broken
    named = f"entry seq {seq - 1}" + (f" key {key_before!r}" if key_before is not None else "")
    if next_links:
        raise LedgerError(seq - 1, key_before if key_before is not None else "?",
                          f"entry changed: its hash no longer matches the prev hash recorded by entry {seq} "
                          f"(key {key!r})")
    raise LedgerError(seq, key, f"prev hash does not match the previous entry ({named}): one of the two "
                                f"was altered")


# ---------------------------------------------------------------------------------------------
# the in-memory ledger


@dataclass(slots=True)
class Loading:
    """Rows checked by Ledger.prepare, to be loaded by Ledger.accept."""
    base: int  # the ledger's size they continue
    entries: list
    index: dict
    leaves: list
    datas: list
    head: bytes


class Ledger:
    """One named ledger: the key index and Merkle tree of its committed entries, plus staged ones.

    The writer stages entries inside a store transaction, writes `staged()` rows, and calls
    commit() once the store transaction is durable (rollback() if it failed), so memory never
    runs ahead of disk.

    Memory per committed entry is its key (the index: key -> seq) and its 32-byte leaf hash (the
    tree), not its bytes. Given `read` (seq -> the stored entry bytes; lwas.runtime.host passes
    the store's) the entry bytes stay in the store and are read back when a proof needs them or
    an idempotency check meets a key it already holds (to compare the payloads exactly);
    without it (tools, tests) the ledger keeps the bytes itself.
    """

    def __init__(self, name: str, origin: str, private_key, key_name: str | None = None, read=None):
        self.name, self.origin = name, origin
        self.private_key = private_key
        self.key_name = key_name or key_name_for(private_key.public_key())
        self.tree = MerkleTree()
        self._read = read
        self._entries: list[bytes] | None = None if read is not None else []
        self._index: dict[str, int] = {}  # key -> seq of every committed entry
        self._staged: list[tuple[int, str, bytes, bytes]] = []  # (seq, key, entry, leaf hash)
        self._staged_index: dict[str, tuple[int, bytes]] = {}  # key -> (seq, SHA-256 of payload)
        self._head = ZERO_HASH  # leaf hash of the last entry, committed or staged
        self._notes: dict[int, tuple[bytes, str]] = {}  # size -> (root, note)

    @property
    def size(self) -> int:
        return len(self.tree)

    def entry(self, index: int) -> bytes:
        """The bytes of committed entry `index` (read from the store when the ledger has one)."""
        if self._entries is not None:
            return self._entries[index]
        if not 0 <= index < self.size:
            raise IndexError(f"ledger {self.name!r} has no entry {index}")
        data = self._read(index)
        if data is None:
            raise LedgerError(index, "?", "the entry is missing from the store")
        if sha256(b"\x00" + data).digest() != self.tree.leaf(index):  # never serve bytes the tree does not hold
            raise LedgerError(index, _key_of(data), f"the stored bytes of the entry in ledger {self.name!r} are not the "
                                          f"entry its Merkle tree holds: the store was altered")
        return data

    def entries(self) -> list[bytes]:
        """Committed entry bytes by index (a copy; O(size): tools and tests)."""
        if self._entries is not None:
            return list(self._entries)
        return [self.entry(i) for i in range(self.size)]

    def load(self, rows) -> list[Entry]:
        """Rows (seq, key, entry bytes[, stored leaf hash or None]) from the store, continuing at
        self.size, in order: every entry is decoded and hashed, its seq, key and prev hash
        checked (and its stored leaf hash, when there is one). All or nothing: LedgerError
        names the first bad row and nothing is loaded. Returns the decoded entries."""
        return self.accept(self.prepare(rows))

    def prepare(self, rows) -> "Loading":
        """The checks of `load` without changing the ledger: `accept` the result to load it."""
        if self._staged:
            raise RuntimeError("catch_up with staged entries: commit or roll back first")
        index = self._index
        fresh: dict[str, int] = {}
        leaves: list[bytes] = []
        datas: list[bytes] = []
        out: list[Entry] = []
        head, want = self._head, self.size
        hl = HEADER.size
        keep = self._entries is not None
        before = None  # key of the previous row (None: an entry loaded earlier)
        broken = None  # (seq, key) of a row whose prev hash is not its predecessor's leaf hash
        for row in rows:
            seq, key, data = row[0], row[1], bytes(row[2])
            stored = row[3] if len(row) > 3 else None
            if seq != want:
                raise LedgerError(seq, key, f"expected seq {want}")
            if len(data) < hl or data[:4] != MAGIC:
                raise LedgerError(seq, key, "not an LWE1 entry")
            e = decode_entry(data)
            if e.seq != seq:
                raise LedgerError(seq, key, f"entry bytes carry seq {e.seq}")
            if e.key != key:
                raise LedgerError(seq, key, f"entry bytes carry key {e.key!r}")
            if broken is not None:
                _chain_break(broken, e.prev == head)
            if e.prev != head:
                broken = (seq, key, before)  # which of the two changed: the next row tells
            if key in index or key in fresh:
                raise LedgerError(seq, key, f"duplicate key (first at seq {index.get(key, fresh.get(key))})")
            head = sha256(b"\x00" + data).digest()
            if stored is not None and bytes(stored) != head:
                raise LedgerError(seq, key, "the stored leaf hash is not the hash of the entry")
            leaves.append(head)
            fresh[key] = seq
            if keep:
                datas.append(data)
            out.append(e)
            before = key
            want += 1
        if broken is not None:
            _chain_break(broken, False)
        return Loading(self.size, out, fresh, leaves, datas, head)

    def accept(self, loading: "Loading") -> list[Entry]:
        """Load what `prepare` checked (nothing may have changed the ledger in between)."""
        if loading.base != self.size or self._staged:
            raise RuntimeError(f"ledger {self.name!r} changed between prepare and accept")
        if loading.entries:
            self.tree.extend(loading.leaves)
            self._index.update(loading.index)
            if self._entries is not None:
                self._entries.extend(loading.datas)
            self._head = loading.head
        return loading.entries

    catch_up = load

    def restore(self, keys: list[str], tree: MerkleTree) -> None:
        """Start an empty ledger from a verified prefix without reading its entries: keys[i] is
        the key of entry i and `tree` the Merkle tree over their leaf hashes (the stored leaf
        hashes, checked against a signed snapshot: lwas.runtime.snapshot). The entries after
        it are then `load`ed, the first of them checked against the last leaf hash here."""
        if self.size or self._staged:
            raise RuntimeError(f"ledger {self.name!r}: restore into a ledger that holds entries")
        if self._entries is not None:
            raise RuntimeError(f"ledger {self.name!r}: restore needs entries readable from a store")
        n = len(keys)
        if n != len(tree):
            raise ValueError(f"ledger {self.name!r}: {n} keys for a tree of {len(tree)} leaves")
        index = dict(zip(keys, range(n)))
        if len(index) != n:
            seen: dict[str, int] = {}
            for i, k in enumerate(keys):
                if k in seen:
                    raise LedgerError(i, k, f"duplicate key (first at seq {seen[k]})")
                seen[k] = i
        self._index, self.tree = index, tree
        self._head = tree.leaf(n - 1) if n else ZERO_HASH

    def _payload(self, seq: int) -> bytes:
        return decode_entry(self.entry(seq)).payload

    def check(self, key: str, payload: bytes) -> str:
        """"new", "exists" (same key, same payload: an idempotent retry) or "conflict"."""
        seq = self._index.get(key)
        if seq is not None:
            return "exists" if self._payload(seq) == payload else "conflict"
        hit = self._staged_index.get(key)
        if hit is None:
            return "new"
        return "exists" if hit[1] == sha256(payload).digest() else "conflict"

    def seq_of(self, key: str) -> int | None:
        """Seq of `key` among committed and staged entries."""
        seq = self._index.get(key)
        if seq is not None:
            return seq
        hit = self._staged_index.get(key)
        return None if hit is None else hit[0]

    def stage(self, key: str, payload: bytes, time_micros: int,
              artifact_digest: bytes) -> tuple[int, bytes]:
        if key in self._index or key in self._staged_index:
            raise ValueError(f"key {key!r} already in ledger {self.name}")
        seq = self.size + len(self._staged)
        data = encode_entry(seq, time_micros, artifact_digest, self._head, key, payload)
        self._head = sha256(b"\x00" + data).digest()
        self._staged.append((seq, key, data, self._head))
        self._staged_index[key] = (seq, sha256(payload).digest())
        return seq, data

    def staged(self) -> list[tuple[int, str, bytes, bytes]]:
        """The staged rows (seq, key, entry bytes, leaf hash), as the store appends them."""
        return list(self._staged)

    def commit(self) -> None:
        if not self._staged:
            return
        self.tree.extend([h for _, _, _, h in self._staged])
        index = self._index
        for seq, key, _, _ in self._staged:
            index[key] = seq
        if self._entries is not None:
            self._entries.extend(data for _, _, data, _ in self._staged)
        self._staged.clear()
        self._staged_index.clear()

    def rollback(self) -> None:
        self._staged.clear()
        self._staged_index.clear()
        self._head = self.tree.leaf(self.size - 1) if self.size else ZERO_HASH

    def _note(self, size: int, root: bytes) -> str:
        hit = self._notes.get(size)
        if hit is None or hit[0] != root:  # a rolled-back pending head may have had this size
            hit = self._notes[size] = (root, sign_checkpoint(self.origin, size, root,
                                                             self.private_key, self.key_name))
        return hit[1]

    def pending_checkpoint(self) -> tuple[int, str]:
        """(size, signed note) covering committed + staged entries, to store in the same
        transaction as the staged rows: every durable entry is then under a signature."""
        leaves = [h for _, _, _, h in self._staged]
        size = self.size + len(leaves)
        return size, self._note(size, self.tree.root_after(leaves))

    def checkpoint(self, size: int | None = None) -> dict:
        """The signed tree head at `size` (default: all committed entries); notes are cached."""
        size = self.size if size is None else size
        root = self.tree.root(size)
        note = self._note(size, root)
        return {"origin": self.origin, "tree_size": size, "root_hash": root.hex(),
                "checkpoint": note}

    def proof(self, key: str, with_entry: bool = True) -> dict | None:
        """Inclusion proof of `key` in the committed tree, with its signed checkpoint. The entry
        bytes come from the store when the ledger reads them there: a caller holding a lock the
        writer needs can pass with_entry=False and add "entry" (base64 of self.entry(leaf_index))
        after releasing it (entries never change once committed)."""
        seq = self._index.get(key)
        if seq is None:
            return None
        size = self.size
        out = {"leaf_index": seq, "tree_size": size, "leaf_hash": self.tree.leaf(seq).hex()}
        if with_entry:  # the keys in the order they have always been served
            out["entry"] = base64.b64encode(self.entry(seq)).decode()
        out["audit_path"] = [h.hex() for h in self.tree.inclusion_proof(seq, size)]
        out["checkpoint"] = self.checkpoint(size)["checkpoint"]
        return out

    def consistency(self, first: int, second: int) -> dict:
        if not (isinstance(first, int) and isinstance(second, int)
                and 0 <= first <= second <= self.size):
            raise ValueError(f"bad consistency range {first}..{second} (size {self.size})")
        return {"first": first, "second": second,
                "proof": [h.hex() for h in self.tree.consistency_proof(first, second)]}


def append_batch(store, ledger: Ledger, items, time_micros: int,
                 artifact_digest: bytes) -> list[tuple[str, int]]:
    """Append (key, payload) items in one store transaction (group commit): catch up with rows
    other writers appended, stage the new keys, write rows and a signed checkpoint, commit.

    Returns (status, seq) per item: "new", "exists" (idempotent retry; seq of the original) or
    "conflict" (same key, other payload; nothing written for it). Memory follows the store:
    on any exception the staged entries are rolled back and the exception re-raised.
    """
    out: list[tuple[str, int]] = []
    try:
        with store.transaction() as tx:
            ledger.catch_up(tx.read(ledger.name, ledger.size - 1))
            for key, payload in items:
                status = ledger.check(key, payload)
                if status == "new":
                    seq, _ = ledger.stage(key, payload, time_micros, artifact_digest)
                else:
                    seq = ledger.seq_of(key)
                out.append((status, seq))
            if ledger._staged:
                tx.append_many(ledger.name, ledger._staged)
                tx.add_checkpoint(ledger.name, *ledger.pending_checkpoint())
    except BaseException:
        ledger.rollback()
        raise
    ledger.commit()
    return out
