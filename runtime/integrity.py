"""Start-time integrity: a ledger is served only if its newest signed checkpoint covers exactly
the entries the start loaded, signs their Merkle root, and is signed by this service's key.

Why exactly: the writer commits a batch's rows and a checkpoint over them in ONE store
transaction (lwas.runtime.host Service._run_batch, lwas.runtime.ledger.append_batch), so a
crash — `kill -9` included — leaves either both or neither, and in an honest store the newest
checkpoint of a ledger signs all of its stored entries, no fewer and no more. Anything else
means rows were added, deleted or changed behind the runtime's back, and serving would sign the
next checkpoint over them, making a forgery look legitimate.

What the start has checked before this runs, as it loaded the entries (Ledger.prepare on every
replayed entry; the signed leaf digest of the snapshot for the entries under it,
lwas.runtime.snapshot): the entries form one chain of prev hashes, and each leaf hash is the
hash of its entry's bytes (or, under a snapshot, the leaf hash that snapshot signs). Each prev
hash vouches for the entry before it, so every entry but the last is bound to the last one;
when the loaded root differs from the signed root, it is the last entry that was changed (its
stored leaf hash recomputed to match), the one entry no later prev hash vouches for. A changed
entry in the middle breaks the chain and is named by the load itself.

Cost: per ledger one indexed row read, one signature verification and the root the tree
already holds: nothing on top of the O(entries), page-by-page load.
"""
from __future__ import annotations

from lwas.runtime.checkpoint import BadSignature, NotSignedBy, key_name_for, parse_checkpoint


class IntegrityError(ValueError):
    """A ledger whose stored entries its newest signed checkpoint does not vouch for."""


def check_ledgers(service, tx) -> None:
    """Raise IntegrityError naming the ledger, the entry (seq, key) and what does not match,
    for the first ledger of `service` that the newest checkpoint in `tx` does not vouch for.
    Runs inside the start's transaction, after the entries were loaded."""
    for ledger in service.ledgers:
        check_ledger(ledger, tx, service.public_key)


def check_ledger(ledger, tx, public_key) -> None:
    name, n = ledger.name, ledger.size
    mark = tx.last_checkpoint(name)
    if mark is None:
        if n:
            raise IntegrityError(f"ledger {name!r}: entries 0..{n - 1} are not covered by any signed checkpoint "
                                 f"(first: seq 0, key {_key(tx, name, 0)!r}): rows were added behind the "
                                 f"runtime's back; refusing to serve it (`lwasc ledger verify` says more)")
        return
    size, note = mark
    _, signed_size, root = _parse(name, size, note, public_key)
    if signed_size != size:
        raise IntegrityError(f"ledger {name!r}: the newest checkpoint is stored at tree size {size} but signs "
                             f"tree size {signed_size}: the checkpoint row was altered")
    if size < n:
        raise IntegrityError(f"ledger {name!r}: entry seq {size}, key {_key(tx, name, size)!r} "
                             f"{'and the ' + str(n - size - 1) + ' after it are' if n - size > 1 else 'is'} not "
                             f"covered by the newest signed checkpoint (tree size {size}): rows were added "
                             f"behind the runtime's back; refusing to serve it")
    if size > n:
        raise IntegrityError(f"ledger {name!r}: the newest signed checkpoint covers {size} entries but the store "
                             f"holds {n}: entries {n}..{size - 1} were deleted; refusing to serve it")
    here = ledger.tree.root(n)
    if here != root:
        raise IntegrityError(f"ledger {name!r}: entry seq {n - 1}, key {_key(tx, name, n - 1)!r} does not match "
                             f"the newest signed checkpoint (tree size {size}): the stored entries have Merkle "
                             f"root {here.hex()[:16]}…, the checkpoint signs {root.hex()[:16]}…; the entry (and "
                             f"its stored leaf hash) was altered; refusing to serve it")


def _parse(name: str, size: int, note: str, public_key):
    """(origin, size, root) of the checkpoint, or IntegrityError saying what is wrong with it."""
    try:
        return parse_checkpoint(note, public_key)
    except ValueError as e:
        failure = e
    ours = key_name_for(public_key)
    if isinstance(failure, NotSignedBy):
        by = f" ({', '.join(failure.signers)})" if failure.signers else ""
        raise IntegrityError(f"ledger {name!r} is signed by another key{by} than this one ({ours}); serve it "
                             f"with the key that signed it") from None
    if isinstance(failure, BadSignature):
        raise IntegrityError(f"ledger {name!r}: the signature of its newest checkpoint (tree size {size}) by "
                             f"this service's key ({ours}) does not verify: the checkpoint was altered or "
                             f"damaged; refusing to serve it") from None
    raise IntegrityError(f"ledger {name!r}: its newest checkpoint (tree size {size}) is malformed "
                         f"({failure}); refusing to serve it") from None


def _key(tx, ledger: str, seq: int) -> str:
    key = tx.key_at(ledger, seq)
    return "?" if key is None else key
