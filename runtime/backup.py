"""Ledger backup, restore and comparison: `lwasc ledger export | import | compare`.

Archive format "lwas-ledger-archive" version 1: a gzip stream (mtime 0, no file name) of UTF-8
JSON lines, each a JSON object with sorted keys and no spaces. Bytes are base64 (standard
alphabet, padded). Lines, in this order:

1. the header:
   {"format": "lwas-ledger-archive", "version": 1, "kind": "full" | "incremental",
    "created": "2026-01-25T02:52:48Z", "public_key": "<PEM>", "key_name": "lwas-xxxxxxxx",
    "ledgers": {NAME: {"from": A, "from_root": b64, "size": N, "root": b64}, ...}}
   Per ledger the archive holds entries A..N-1 and ends at the signed tree (N, root). A full
   archive has from = 0 (from_root = the empty-tree root); an incremental one continues from
   the (size, root) where the previous archive of the chain ended. When the store records entry
   layouts (lwas.runtime.schema), the header also has
    "layouts": {NAME: {ARTIFACT_HEX: {"entry": TypeDesc, "key": FIELD}, ...}, ...}
   every layout recorded for the archived ledgers (an importer without it ignores the key; the
   layouts are not signed: the importer checks that each entry decodes with its artifact's).
2. per ledger, in name order:
   {"t": "entry", "ledger": NAME, "seq": S, "key": K, "data": b64(entry bytes)}  seq A..N-1
   {"t": "checkpoint", "ledger": NAME, "size": M, "note": "<C2SP signed note>"}  M ascending;
       a full archive carries every checkpoint up to N, an incremental one those in (A, N];
       the one at N signs the header's root (absent only when N = A: nothing new)
   {"t": "consistency", "ledger": NAME, "from": A, "to": N, "proof": [b64, ...]}  incremental
       only: the RFC 6962 consistency proof from (A, from_root) to (N, root)
3. the trailer: {"t": "end", "records": R, "sha256": HEX}, R = the number of lines before it
   and HEX = SHA-256 of their bytes (a truncated or damaged archive is refused outright).

Export reads every ledger inside ONE store transaction (writers are excluded, so the snapshot is
consistent), verifies it with the public key (runtime.verify: chain, Merkle roots, signatures)
and stops each ledger at its last signed checkpoint: entries past it are not exported. Import
verifies the whole chain of archives (structure, trailer digest, key, that each incremental
follows the previous, consistency proofs, then the restored ledgers with runtime.verify, and
that every entry decodes with its recorded layout) before it writes anything, into an empty
store, in one transaction, layouts included.
"""
from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import os
import sys
import tempfile
import zlib
from datetime import datetime, timezone
from itertools import zip_longest

from lwas.runtime.checkpoint import key_name_for, parse_checkpoint
from lwas.runtime.ledger import decode_entry, decode_value
from lwas.runtime.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, verify_consistency
from lwas.runtime.schema import add_layouts, all_layouts, stored_layouts
from lwas.runtime.store import _LEDGERS, open_store
from lwas.runtime.verify import Problem, Report, _Bad, _verify_ledger

FORMAT, VERSION = "lwas-ledger-archive", 1


class BackupError(Exception):
    """A refusal: the message is one line, printed as `error: <message>`."""


# ------------------------------------------------------------------------------ helpers


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s, what: str) -> bytes:
    if not isinstance(s, str):
        raise BackupError(f"{what}: not base64 text")
    try:
        return base64.b64decode(s, validate=True)
    except binascii.Error:
        raise BackupError(f"{what}: not base64") from None


def _line(obj) -> bytes:
    return (json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def _is_int(v) -> bool:
    return type(v) is int and v >= 0


def _raw_key(public_key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _pem(public_key) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def _load_pem(text) -> object:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(text.encode())
    except (ValueError, TypeError, AttributeError):
        raise BackupError("header: public_key is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BackupError("header: public_key is not an Ed25519 key")
    return key


class _Snapshot:
    """In-memory rows and checkpoints shaped like a store, for runtime.verify._verify_ledger."""

    def __init__(self):
        self.rows: dict[str, list[tuple[int, str, bytes]]] = {}
        self.cps: dict[str, list[tuple[int, str]]] = {}
        self.layouts: dict[str, dict[str, dict]] = {}  # ledger -> artifact hex -> layout

    def ledgers(self) -> list[str]:
        return sorted(set(self.rows) | set(self.cps))

    def checkpoints(self, name: str) -> list[tuple[int, str]]:
        return sorted(self.cps.get(name, []))

    def read(self, name: str, after_seq: int = -1):
        return [r for r in self.rows.get(name, []) if r[0] > after_seq]


def _verify(snap: _Snapshot, name: str, public_key, allow_unsigned_tail: bool) -> int:
    """Entries past the last checkpoint; BackupError with verify's own wording on a fault."""
    try:
        _, _, unsigned = _verify_ledger(snap, name, public_key, allow_unsigned_tail)
    except _Bad as bad:
        text = Report(ok=False, problem=Problem(name, bad.seq, bad.key, bad.reason, bad.wrong_key)).text()
        raise BackupError(text) from None
    return unsigned


# ------------------------------------------------------------------------------ archives


class Archive:
    def __init__(self, path: str, header: dict, records: list[dict]):
        self.path, self.header, self.records = path, header, records
        self.kind = header["kind"]
        self.public_key = _load_pem(header["public_key"])
        self.ledgers: dict[str, dict] = {}
        self.layouts: dict[str, dict[str, dict]] = header.get("layouts", {})
        for name, info in header["ledgers"].items():
            self.ledgers[name] = {"from": info["from"], "size": info["size"],
                                  "from_root": _unb64(info["from_root"], f"header: ledger {name!r} from_root"),
                                  "root": _unb64(info["root"], f"header: ledger {name!r} root")}


def read_archive(path: str) -> Archive:
    """Parse and structurally check an archive (format, trailer digest); no signatures yet."""
    try:
        with gzip.open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise BackupError(f"{path}: no such archive") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise BackupError(f"{path}: truncated or not a gzip archive ({e})") from None
    except OSError as e:
        raise BackupError(f"{path}: cannot read archive: {e.strerror or e}") from None
    try:
        return _parse(path, blob)
    except BackupError as e:
        raise BackupError(f"{path}: {e}") from None


def _parse(path: str, blob: bytes) -> Archive:
    lines = blob.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    else:
        raise BackupError("truncated archive (no final newline)")
    objs = []
    for i, raw in enumerate(lines, 1):
        try:
            o = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BackupError(f"line {i}: not JSON") from None
        if not isinstance(o, dict):
            raise BackupError(f"line {i}: not a JSON object")
        objs.append(o)
    if not objs:
        raise BackupError("empty archive")
    end = objs[-1]
    if end.get("t") != "end":
        raise BackupError("truncated archive (no end record)")
    body = b"".join(line + b"\n" for line in lines[:-1])
    if end.get("records") != len(lines) - 1:
        raise BackupError(f"truncated archive: end record counts {end.get('records')!r} records, "
                          f"found {len(lines) - 1}")
    if end.get("sha256") != hashlib.sha256(body).hexdigest():
        raise BackupError("archive damaged: SHA-256 of its records differs from the end record")
    header = objs[0]
    if header.get("format") != FORMAT:
        raise BackupError(f"not an {FORMAT} (format {header.get('format')!r})")
    if header.get("version") != VERSION:
        raise BackupError(f"unsupported archive version {header.get('version')!r}")
    if header.get("kind") not in ("full", "incremental"):
        raise BackupError(f"bad archive kind {header.get('kind')!r}")
    if not isinstance(header.get("public_key"), str) or not isinstance(header.get("ledgers"), dict):
        raise BackupError("header: public_key and ledgers are required")
    for name, info in header["ledgers"].items():
        if (not isinstance(info, dict) or not _is_int(info.get("from")) or not _is_int(info.get("size"))
                or info["from"] > info["size"]):
            raise BackupError(f"header: bad entry for ledger {name!r}")
        if header["kind"] == "full" and info["from"] != 0:
            raise BackupError(f"header: full archive starts ledger {name!r} at {info['from']}")
    _check_layouts(header.get("layouts", {}), header["ledgers"])
    records = objs[1:-1]
    for i, r in enumerate(records, 2):
        t = r.get("t")
        if r.get("ledger") not in header["ledgers"]:
            raise BackupError(f"line {i}: record for a ledger not in the header: {r.get('ledger')!r}")
        if t == "entry":
            ok = _is_int(r.get("seq")) and isinstance(r.get("key"), str)
            r["data"] = _unb64(r.get("data"), f"line {i}: entry data")
        elif t == "checkpoint":
            ok = _is_int(r.get("size")) and isinstance(r.get("note"), str)
        elif t == "consistency":
            ok = _is_int(r.get("from")) and _is_int(r.get("to")) and isinstance(r.get("proof"), list)
            if ok:
                r["proof"] = [_unb64(p, f"line {i}: consistency proof") for p in r["proof"]]
        else:
            raise BackupError(f"line {i}: unknown record type {t!r}")
        if not ok:
            raise BackupError(f"line {i}: malformed {t} record")
    return Archive(path, header, records)


def _check_layouts(layouts, ledgers: dict) -> None:
    """The header's layouts: per archived ledger, artifact digests (hex) -> {"entry", "key"}."""
    if not isinstance(layouts, dict):
        raise BackupError("header: layouts is not an object")
    for name, per in layouts.items():
        if name not in ledgers:
            raise BackupError(f"header: layouts for a ledger not in the header: {name!r}")
        if not isinstance(per, dict):
            raise BackupError(f"header: the layouts of ledger {name!r} are not an object")
        for art, layout in per.items():
            if (not isinstance(art, str) or len(art) != 128 or not all(c in "0123456789abcdef" for c in art)
                    or not isinstance(layout, dict) or set(layout) != {"entry", "key"}
                    or not isinstance(layout["key"], str) or not isinstance(layout["entry"], (str, dict))):
                raise BackupError(f"header: bad layout of ledger {name!r} for artifact {str(art)[:16]!r}")


def _write_archive(path: str, header: dict, records) -> None:
    """Write atomically (temporary file + fsync + rename)."""
    lines = [_line(header)] + [_line(r) for r in records]
    body = b"".join(lines)
    trailer = _line({"t": "end", "records": len(lines), "sha256": hashlib.sha256(body).hexdigest()})
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".lwas-archive-", dir=d)
    try:
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                gz.write(body)
                gz.write(trailer)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ------------------------------------------------------------------------------ export


def _snapshot(url: str) -> _Snapshot:
    """Every ledger's rows and checkpoints, read inside one (writer-excluding) transaction."""
    store = open_store(url, create=False)
    snap = _Snapshot()
    try:
        with store.transaction() as tx:
            tx.cur.execute(_LEDGERS)
            names = [r[0] for r in tx.cur.fetchall()]
            for name in names:
                snap.rows[name] = tx.read(name)
                tx.cur.execute(f"SELECT tree_size, note FROM checkpoints WHERE ledger = {tx.mark} "
                               "ORDER BY tree_size", (name,))
                snap.cps[name] = [(s, n) for s, n in tx.cur.fetchall()]
            snap.layouts = {n: per for n, per in all_layouts(tx).items() if n in names}
    finally:
        store.close()
    return snap


def export_archive(url: str, out: str, public_key, since: str | None = None,
                   now: datetime | None = None) -> dict:
    """Write a full (or, with `since`, incremental) archive of the store; returns the header."""
    prev = None
    if since is not None:
        prev = read_archive(since)
        if _raw_key(prev.public_key) != _raw_key(public_key):
            raise BackupError(f"{since}: the previous archive was signed by another key")
    snap = _snapshot(url)
    if prev is not None:
        gone = sorted(set(prev.ledgers) - set(snap.ledgers()))
        if gone:
            raise BackupError(f"ledger {gone[0]!r} is in the previous archive but not in the store")
    ledgers, records, skipped = {}, [], {}
    for name in snap.ledgers():
        unsigned = _verify(snap, name, public_key, allow_unsigned_tail=True)
        cps = snap.checkpoints(name)
        size = cps[-1][0] if cps else 0
        root = parse_checkpoint(cps[-1][1], public_key)[2] if cps else EMPTY_ROOT
        if unsigned:
            skipped[name] = unsigned
        rows = snap.read(name)[:size]
        tree = MerkleTree([leaf_hash(d) for _, _, d in rows])
        start, start_root = 0, EMPTY_ROOT
        if prev is not None and name in prev.ledgers:
            start, start_root = prev.ledgers[name]["size"], prev.ledgers[name]["root"]
            if start > size:
                raise BackupError(f"ledger {name!r}: the store's signed size {size} is below the "
                                  f"previous archive's {start}")
            if tree.root(start) != start_root:
                raise BackupError(f"ledger {name!r}: the store does not extend the previous archive "
                                  f"(root at tree size {start} differs)")
        ledgers[name] = {"from": start, "from_root": _b64(start_root), "size": size, "root": _b64(root)}
        for seq, key, data in rows[start:]:
            records.append({"t": "entry", "ledger": name, "seq": seq, "key": key, "data": _b64(data)})
        for s, note in cps:
            if (s > start or prev is None) and s <= size:
                records.append({"t": "checkpoint", "ledger": name, "size": s, "note": note})
        if prev is not None:
            records.append({"t": "consistency", "ledger": name, "from": start, "to": size,
                            "proof": [_b64(h) for h in tree.consistency_proof(start, size)]})
    created = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = {"format": FORMAT, "version": VERSION, "kind": "full" if prev is None else "incremental",
              "created": created, "public_key": _pem(public_key), "key_name": key_name_for(public_key),
              "ledgers": ledgers}
    if snap.layouts:
        header["layouts"] = snap.layouts
    _write_archive(out, header, records)
    return {"header": header, "unsigned_skipped": skipped,
            "entries": sum(r["t"] == "entry" for r in records)}


# ------------------------------------------------------------------------------ import


def verify_chain(paths: list[str], public_key=None) -> tuple[_Snapshot, object]:
    """Check a full archive and its incrementals, in order; the restored rows and the key."""
    if not paths:
        raise BackupError("no archive given")
    snap = _Snapshot()
    state: dict[str, tuple[int, bytes]] = {}
    key = None
    for i, path in enumerate(paths):
        a = read_archive(path)
        want = "full" if i == 0 else "incremental"
        if a.kind != want:
            raise BackupError(f"{path}: is a {a.kind} archive, expected a {want} one here"
                              + (" (give the full archive first)" if i == 0 else ""))
        if public_key is not None and _raw_key(a.public_key) != _raw_key(public_key):
            raise BackupError(f"{path}: signed by key {key_name_for(a.public_key)}, not by the given "
                              f"--pubkey ({key_name_for(public_key)})")
        if key is not None and _raw_key(a.public_key) != _raw_key(key):
            raise BackupError(f"{path}: signed by another key than {paths[0]}")
        key = a.public_key
        missing = sorted(set(state) - set(a.ledgers))
        if missing:
            raise BackupError(f"{path}: does not follow {paths[i - 1]}: ledger {missing[0]!r} is missing")
        try:
            _apply(a, snap, state)
        except BackupError as e:
            raise BackupError(f"{path}: {e}") from None
    for name in snap.ledgers():
        _verify(snap, name, key, allow_unsigned_tail=False)
        _decodes(snap, name)
    return snap, key


def _decodes(snap: _Snapshot, name: str) -> None:
    """Every entry written by an artifact with a recorded layout decodes with that layout."""
    per = snap.layouts.get(name)
    if not per:
        return
    descs = {bytes.fromhex(a): layout["entry"] for a, layout in per.items()}
    for seq, key, data in snap.read(name):
        e = decode_entry(data)
        desc = descs.get(e.artifact)
        if desc is None:
            continue
        try:
            decode_value(desc, e.payload)
        except ValueError as err:
            raise BackupError(f"ledger {name!r} seq {seq} key {key!r}: the entry does not decode with the "
                              f"layout recorded for its artifact ({err})") from None


def _apply(a: Archive, snap: _Snapshot, state: dict) -> None:
    by: dict[str, dict[str, list]] = {n: {"entry": [], "checkpoint": [], "consistency": []} for n in a.ledgers}
    for r in a.records:
        by[r["ledger"]][r["t"]].append(r)
    for name, info in a.ledgers.items():
        start, size, root = info["from"], info["size"], info["root"]
        have = state.get(name, (0, EMPTY_ROOT))
        if (start, info["from_root"]) != have:
            raise BackupError(f"does not follow the previous archive: ledger {name!r} starts at tree "
                              f"size {start}, the previous archive ended at {have[0]}"
                              + (" with another root" if start == have[0] else ""))
        ents = by[name]["entry"]
        if [r["seq"] for r in ents] != list(range(start, size)):
            raise BackupError(f"ledger {name!r}: entries {start}..{size - 1} expected, "
                              f"archive holds {len(ents)} (truncated or reordered)")
        cps = by[name]["checkpoint"]
        sizes = [c["size"] for c in cps]
        lo = -1 if a.kind == "full" else start
        if sizes != sorted(set(sizes)) or any(not lo < s <= size for s in sizes):
            raise BackupError(f"ledger {name!r}: checkpoints out of order or outside {start}..{size}")
        if size > start or (a.kind == "full" and cps):
            if not cps or sizes[-1] != size:
                raise BackupError(f"ledger {name!r}: no signed checkpoint at its end, tree size {size}")
            try:
                _, _, signed = parse_checkpoint(cps[-1]["note"], a.public_key)
            except ValueError as e:
                raise BackupError(f"ledger {name!r}: checkpoint at tree size {size}: {e}") from None
            if signed != root:
                raise BackupError(f"ledger {name!r}: header root differs from the signed checkpoint")
        elif root != info["from_root"]:
            raise BackupError(f"ledger {name!r}: root changed without new entries")
        if a.kind == "incremental":
            proofs = by[name]["consistency"]
            if len(proofs) != 1 or proofs[0]["from"] != start or proofs[0]["to"] != size:
                raise BackupError(f"ledger {name!r}: needs one consistency proof {start}..{size}")
            if not verify_consistency(start, size, proofs[0]["proof"], info["from_root"], root):
                raise BackupError(f"ledger {name!r}: consistency proof from tree size {start} to "
                                  f"{size} does not verify: the log did not only grow")
        elif by[name]["consistency"]:
            raise BackupError(f"ledger {name!r}: a full archive carries no consistency proof")
        snap.rows.setdefault(name, []).extend((r["seq"], r["key"], r["data"]) for r in ents)
        snap.cps.setdefault(name, []).extend((c["size"], c["note"]) for c in cps)
        state[name] = (size, root)
    for name, per in a.layouts.items():
        have = snap.layouts.setdefault(name, {})
        for art, layout in per.items():
            if have.setdefault(art, layout) != layout:
                raise BackupError(f"ledger {name!r}: artifact {art[:16]}… has another layout than in "
                                  "the previous archive")


def import_archives(paths: list[str], url: str, public_key=None) -> dict:
    """Verify the chain, then restore it into the EMPTY store at `url` in one transaction."""
    snap, _ = verify_chain(paths, public_key)
    store = open_store(url)
    try:
        with store.transaction() as tx:
            tx.cur.execute("SELECT 1 FROM entries UNION ALL SELECT 1 FROM checkpoints LIMIT 1")
            if tx.cur.fetchall():
                raise BackupError(f"target store {url} is not empty: import restores only into an "
                                  "empty store")
            n = 0
            for name in snap.ledgers():
                rows = snap.read(name)
                tx.append_many(name, rows)
                for s, note in snap.checkpoints(name):
                    tx.add_checkpoint(name, s, note)
                n += len(rows)
            for name, per in sorted(snap.layouts.items()):
                try:
                    add_layouts(tx, name, per)
                except ValueError as e:  # the store already records another layout
                    raise BackupError(f"target store {url}: {e}") from None
    finally:
        store.close()
    return {"ledgers": len(snap.ledgers()), "entries": n}


# ------------------------------------------------------------------------------ compare


def compare_stores(a_url: str, b_url: str) -> tuple[bool, list[str]]:
    """(consistent, report lines): per ledger, one store must be a prefix of the other."""
    a, b = open_store(a_url, create=False), None
    try:
        b = open_store(b_url, create=False)
        lines, ok = [], True
        for name in sorted(set(a.ledgers()) | set(b.ledgers())):
            na = nb = 0
            diverged = None
            for ra, rb in zip_longest(a.read(name), b.read(name)):
                if ra is not None and rb is not None:
                    if (ra[0], ra[1], bytes(ra[2])) != (rb[0], rb[1], bytes(rb[2])):
                        diverged = (ra, rb)
                        break
                na += ra is not None
                nb += rb is not None
            clash = _layout_clash(a, b, name)
            if clash and not diverged:
                ok = False
                lines.append(f"ledger {name!r}: DIVERGED: A and B record different entry layouts for "
                             f"artifact {clash[:16]}… (its entries would read differently)")
                continue
            if diverged:
                ok = False
                ra, rb = diverged
                lines.append(f"ledger {name!r}: DIVERGED at seq {min(ra[0], rb[0])}: "
                             f"A has key {ra[1]!r}, B has key {rb[1]!r}"
                             + (" (same key, different entry)" if ra[1] == rb[1] else ""))
            elif na == nb:
                lines.append(f"ledger {name!r}: equal ({na} entries)")
            else:
                ahead, by = ("A", na - nb) if na > nb else ("B", nb - na)
                lines.append(f"ledger {name!r}: {ahead} is ahead by {by} entries "
                             f"(A has {na}, B has {nb})")
        lines.append("CONSISTENT" if ok else "DIVERGED")
        return ok, lines
    finally:
        a.close()
        if b is not None:
            b.close()


def _layout_clash(a, b, name: str) -> str | None:
    """An artifact (hex) whose recorded layout of ledger `name` differs between stores a and b."""
    la, lb = stored_layouts(a, name), stored_layouts(b, name)
    return next((art.hex() for art in sorted(la) if art in lb and la[art] != lb[art]), None)


# ------------------------------------------------------------------------------ commands


def _err(msg: str) -> int:
    print(f"error: {msg}".replace("\n", " "), file=sys.stderr)
    return 2


def _key(path: str):
    from lwas.runtime.verify import load_public_key

    try:
        return load_public_key(path)
    except (OSError, ValueError) as e:
        raise BackupError(f"cannot read public key: {e}") from None


def export_command(db: str, out: str, pubkey: str, since: str | None = None) -> int:
    try:
        header = export_archive(db, out, _key(pubkey), since)
    except BackupError as e:
        return _err(str(e))
    except Exception as e:  # an unreachable server, a missing file, an unwritable output, ...
        return _err(f"cannot export {db}: {e}")
    for name, n in header["unsigned_skipped"].items():
        print(f"note: ledger {name!r}: {n} entries past the last signed checkpoint not exported",
              file=sys.stderr)
    h = header["header"]
    print(f"wrote {h['kind']} archive {out}: {len(h['ledgers'])} ledgers, {header['entries']} entries ("
          + ", ".join(f"{n}: {v['from']}..{v['size']}" for n, v in h["ledgers"].items()) + ")")
    return 0


def import_command(paths: list[str], db: str, pubkey: str | None = None) -> int:
    try:
        got = import_archives(paths, db, _key(pubkey) if pubkey else None)
    except BackupError as e:
        return _err(str(e))
    except Exception as e:
        return _err(f"cannot import into {db}: {e}")
    print(f"restored {got['ledgers']} ledgers, {got['entries']} entries into {db}")
    return 0


def compare_command(a: str, b: str) -> int:
    try:
        ok, lines = compare_stores(a, b)
    except Exception as e:
        return _err(f"cannot compare: {e}")
    print("\n".join(lines))
    return 0 if ok else 1
