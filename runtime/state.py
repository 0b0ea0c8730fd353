"""A service's state, kept in native memory between calls.

The state is a record (lwas.semantics.service's `svc.State`) whose maps are persistent trees
(lwas.backend.mapgen): a new state shares every node it did not change with the one before it. So the
runtime keeps the state where native code made it and hands routes, guards and `on` blocks its
address (`nativevalues.Ref`); only request parameters, entries and responses cross into Python. A
request that touches k entries of a map of n costs O(k log n), whatever else the state holds.

Why persistent structures rather than in-place updates with an undo log: the committed state
is immutable, so readers (get routes, guards, external routes, snapshots) need no lock while
the writer computes the next state; a fault or a failed commit is undone by dropping the new
state (nothing was written in place); and a snapshot can be read off a writer that keeps going.

One bounded exception makes folds cheap: inserts into the state's owned maps (lwas.backend.inplace)
write in place the nodes made under the heap's current *edit number* (lwas.backend.mapgen). The number
moves on (`_seal`) whenever the nodes made so far may be seen or may have to be given up: at
every commit, and before every request (`run`, and `apply` of a route's append), so a refused
or failed request still leaves no trace. A replay or a catch-up folds its entries with
`apply(..., fold=True)` under one number until its commit: each path is copied once per page
of entries, not once per entry (a fault there fails the whole start or batch anyway).

Memory: the writer's calls (`on` blocks, mutating routes, timers) run in their kept-arena form
(lwas.abi KEEP_PREFIX) with the service's *heap* as arena: what they allocate stays, the
parameters they may keep (entries, bodies) are first copied into the heap (`adopt`), and what
the host hands back is copied there by the native code itself. Garbage (old path copies,
temporaries, refused requests) accumulates in the heap until it holds more than
COMPACT_FACTOR times the live bytes of the last compaction (and at least COMPACT_MIN): then the
writer copies the committed state into a new heap (the kept form of `svc$copy`, adopting its
argument) and retires the old one, which is freed when its last reader leaves. The copy costs
O(live state) once per that much allocation: amortised O(1) per allocated byte.
"""
from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager

from lwas.runtime.ledger import decode_value, encode_value
from lwas.runtime.nativevalues import Ref, ctype, to_python
from lwas.runtime.snapcodec import codec_for

COMPACT_FACTOR = 2.0
COMPACT_MIN = 8 << 20  # bytes: below this a heap is never compacted


class _Arena(ctypes.Structure):
    """lwas.backend.codegen ARENA: the head of the list of blocks, the bytes they hold, and the edit
    number under which owned map inserts write in place (lwas.backend.mapgen.insert_owned)."""
    _fields_ = [("head", ctypes.c_void_p), ("bytes", ctypes.c_int64), ("edit", ctypes.c_int64)]


class Heap:
    """One kept arena, freed once it is retired and no reader holds it."""

    def __init__(self, program):
        self.program = program
        self.arena = _Arena()
        self.address = ctypes.addressof(self.arena)
        self.readers = 0
        self.retired = False
        self.freed = False

    @property
    def bytes(self) -> int:
        return self.arena.bytes

    def free(self) -> None:
        if not self.freed:
            self.freed = True
            self.program.free_arena(self.address)
            self.arena.head = None
            self.arena.bytes = 0


class KeptState:
    """The committed state of one service, in native memory (see the module docstring).

    The writer thread calls `apply`, `run` and `commit`; any thread may read with `reading()`.
    """

    def __init__(self, program, desc: dict):
        self.program = program
        self.desc = desc
        self.state_type = ctype(desc["state"])
        self.lock = threading.Lock()
        self.heap = Heap(program)
        self.live = 0  # live bytes after the last compaction
        self.compactions = 0
        self._results: dict = {}  # writer function -> its result TypeDesc
        self.edit = 0  # the heap's edit number (see the module docstring)
        self.codec = codec_for(program, desc["name"])  # snapshot bytes in native code, when the artifact has it
        self.committed = self._struct(program.kept(desc["init"])(self.heap.address, 0))
        self._seal()

    def _struct(self, value):
        """A private copy of a state struct (its pointers still point into the heap)."""
        return self.state_type.from_buffer_copy(value)

    # ------------------------------------------------------------ the writer
    def _seal(self) -> None:
        """No node made so far is written in place again: a new edit number for the heap."""
        self.edit += 1
        self.heap.arena.edit = self.edit

    def apply(self, fn: str, state, entry, fold: bool = False):
        """`on` block fn over state (a struct) and entry (a Python value, or a Ref to its record
        in memory, as lwas.runtime.transcode reads it): the new state struct. fold=True (a
        replay, a catch-up: committed after many entries) keeps the edit number."""
        if not fold:
            self._seal()
        kept = self.program.kept(fn)
        if type(entry) is Ref:
            out = kept.by_address(self.heap.address, 0b10, ctypes.addressof(state), entry.address)
        else:
            out = kept(self.heap.address, 0b10, Ref(ctypes.addressof(state)), entry)
        return self._struct(out)

    def run(self, fn: str, state, args: tuple, flat: list | None = None):
        """A writer function (mutating route or timer) over state: (new state struct, its
        response as a Python value, or None when it has none). `flat`: the state and args
        already in native form (NativeProgram.convert), when the route's guards took them too."""
        export_result = self._result(fn)
        self._seal()
        mask = ((1 << (len(args) + 1)) - 1) & ~1  # adopt every parameter but the state
        kept = self.program.kept(fn)
        if flat is not None:
            out = kept.by_address(self.heap.address, mask, *flat)
        else:
            out = kept(self.heap.address, mask, Ref(ctypes.addressof(state)), *args)
        return self._split(export_result, out)

    def _result(self, fn: str):
        d = self._results.get(fn)
        if d is None:
            d = self._results[fn] = next(e["result"] for e in self.program.described["exports"] if e["name"] == fn)
        return d

    def _split(self, desc, out):
        """(state struct, response) of a reply record {state, response}."""
        return self._struct(out.state), self._response(desc, out)

    def _response(self, desc, out):
        fields = dict(desc["fields"])
        return to_python(fields["response"], _plain(out.response)) if "response" in fields else None

    def response(self, fn: str, out):
        """The response of writer function fn's raw reply (as its kept form returned it)."""
        return self._response(self._result(fn), out)

    def commit(self, state) -> None:
        """state is now what readers see."""
        with self.lock:
            self.committed = state
        self._seal()

    def maybe_compact(self) -> bool:
        """Between batches, on the writer: move the committed state to a new heap when the heap
        is mostly garbage. True if it did."""
        used = self.heap.bytes
        if used < COMPACT_MIN or used < COMPACT_FACTOR * self.live:
            return False
        self.compact()
        return True

    def compact(self) -> None:
        """Copy the committed state into a new heap and retire the old one."""
        self._move(Ref(ctypes.addressof(self.committed)))
        self.compactions += 1

    def _move(self, state) -> None:
        """The state (a Ref, or a Python value) copied into a new heap becomes the committed
        state; the old heap is retired (freed once its last reader leaves)."""
        new = Heap(self.program)
        self._install(new, self._struct(self.program.kept(self.desc["copy"])(new.address, 1, state)))

    def _install(self, new: "Heap", state) -> None:
        """A state in heap `new` becomes the committed state; the old heap is retired."""
        with self.lock:
            old, self.heap, self.committed = self.heap, new, state
            old.retired = True
            idle = old.readers == 0
        self._seal()
        if idle:
            old.free()
        self.live = new.bytes

    # ------------------------------------------------------------ readers
    @contextmanager
    def reading(self):
        """The committed state as a `Ref`, valid (and unchanged) until the block ends."""
        with self.lock:
            heap, state = self.heap, self.committed
            heap.readers += 1
        try:
            yield Ref(ctypes.addressof(state)), state
        finally:
            with self.lock:
                heap.readers -= 1
                last = heap.retired and heap.readers == 0
            if last:
                heap.free()

    def scratch(self):
        """A heap of its own for a call whose kept results are read and dropped (external routes
        run off the writer): free it when done."""
        return Heap(self.program)

    # ------------------------------------------------------------ Python values
    def value(self):
        """The committed state as a Python value (O(state): snapshots, tools, tests)."""
        with self.reading() as (_, state):
            return self.value_of(state)

    def value_of(self, state):
        """A state struct as a Python value; hold a `reading()` of it (its heap) meanwhile."""
        return to_python(self.desc["state"], state)

    def encoded(self, state) -> bytes:
        """The canonical encoding of a state struct (what a snapshot stores), written by native
        code (lwas.runtime.snapcodec) or, without it, through the Python value (which also says
        why native code could not, e.g. a NaN). Hold a reading() of its heap meanwhile."""
        if self.codec is not None:
            data = self.codec.encode(ctypes.addressof(state))
            if data is not None:
                return data
        return encode_value(self.desc["state"], self.value_of(state))

    def restore_encoded(self, data: bytes) -> None:
        """Make the state encoded in data (a snapshot's) the committed state, in a fresh heap,
        read by native code; ValueError with the decoder's reason, and nothing changed, when
        data is not one."""
        if self.codec is not None:
            new = Heap(self.program)
            out = self.state_type()
            if self.codec.decode(new.address, data, out):
                self._install(new, self._struct(out))
                return
            new.free()
        self.restore(decode_value(self.desc["state"], data))

    def restore(self, value) -> None:
        """Make value (a Python state value) the committed state, in a fresh heap."""
        self._move(value)

    def close(self) -> None:
        """Free the heap (no reader may be running)."""
        with self.lock:
            self.heap.retired = True
            idle = self.heap.readers == 0
        if idle:
            self.heap.free()


def _plain(v):
    return v.value if isinstance(v, ctypes._SimpleCData) else v
