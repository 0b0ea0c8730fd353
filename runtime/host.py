"""Running one LwaS service: its state, its ledgers, and the writer that serialises changes.

The state is a fold of the service's `on` blocks over its ledger entries (lwas.semantics.service), so:

- on start, the state is restored from the newest snapshot that verifies (lwas.runtime.snapshot:
  signed, same artifact, the stored entries up to its sizes have its roots) and the entries after
  it are replayed, in append order, through the native `on` functions (entries carry a
  service-wide strictly increasing time, which orders entries of different ledgers); without a
  usable snapshot every entry is replayed. A snapshot is written every N entries or T seconds,
  off the writer thread;
- every mutating request runs on ONE writer thread, in a store transaction that is exclusive
  across processes: it first catches up with entries other processes appended (PostgreSQL
  deployments, or several `--workers` on one SQLite file), then runs the guard and the native
  handler against the current state. The handler's `append`s call back into `_Recorder`,
  which answers new / exists (idempotent retry) / conflict against the committed, batched and
  this-request entries. A handler that faults stages nothing.
- Group commit: the writer takes every queued request (up to `max_batch`) into one
  transaction, with a signed checkpoint over each ledger it grew (so every stored entry is
  under a signature); one fsync makes the whole batch durable. Only then do the ledgers and the
  committed state move and the requests get their answers, so an acknowledged entry is on
  disk and no reader sees a state the ledger does not justify. If the commit fails, memory is
  rolled back and, when the store is failing (or its file was deleted or replaced), every
  request of the batch fails with `Unavailable` (503).
- One request never fails another: a request whose values cannot be converted or stored (a
  lone surrogate in a text, an int outside 64 bits) fails alone with `Unprocessable` (422) when
  it runs; a batch whose commit is refused for what a row holds is committed again in halves,
  so only the request that cannot be stored fails.
- A retry answers as a retry: when a guarded route's body is an entry of a ledger that already
  holds its key, the handler first runs without its guards, and if all it does is repeat
  appends that exist, the answer is `exists` (the guards would only refuse a write; this one
  writes nothing). Otherwise the request runs as usual, guards first.

The state lives in native memory (lwas.runtime.state): routes, guards and `on` blocks get its
address, and only parameters, entries and responses cross into Python, so a request costs what
it touches, not the size of the state. Read-only routes run on the caller's thread against the
committed state (immutable: the writer makes a new one, sharing what did not change, and
replaces it).

External routes and timers (those that call an `extern fn`: Stripe, another service) run on the
caller's thread too, against the committed state, so a slow remote call never holds the writer.
Each of their `append`s is a job of its own for the writer (`_Caller`): decided, folded into the
state by its `on` block and committed before the handler goes on. What the outside world did
cannot be undone, so neither is what the handler recorded about it: a fault later in the
handler keeps the appends made before it.
"""
from __future__ import annotations

import ctypes
import heapq
import logging
from contextlib import ExitStack
import os
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable

from lwas.abi import REQUEST_KEY
from lwas.errors import RuntimeError as LwasRuntimeError
from lwas.runtime.ledger import Ledger, LedgerError, decode_entry, decode_value, encode_value
from lwas.runtime.native import hosted, read_value
from lwas.runtime.nativevalues import Ref, _Call
from lwas.runtime.snapshot import Policy, Snapshotter, load_newest, shelf_for
from lwas.runtime.externs import bind_connectors
from lwas.runtime.integrity import check_ledgers
from lwas.runtime.state import KeptState

log = logging.getLogger("lwas.semantics.service")

IDLE_CATCH_UP = 0.5  # seconds between catch-ups with other processes while idle
REPLAY_PAGE = 20_000  # entries per ledger read, checked and folded at a time when a start replays


class GuardRefused(Exception):
    """The route's `requires` rule is below its threshold: 422, nothing written."""

    def __init__(self, rule: str, truth: float, threshold: float, strict: bool):
        super().__init__(f"rule `{rule}` holds with truth {truth:g}, the route requires "
                         f"{'>' if strict else '>='} {threshold:g}")
        self.rule, self.truth, self.threshold, self.strict = rule, truth, threshold, strict


class Unavailable(Exception):
    """The store failed (or the service is stopping): nothing of the request was written."""


class Unprocessable(Exception):
    """This one request cannot be stored (a value no encoding takes: a lone surrogate in a text,
    an integer outside 64 bits, ...): 422, nothing of it written. The other requests of its
    group commit go on (see Service._run_batch)."""

    status = 422
    code = "unprocessable"


# what a request's own values can make the runtime or the store refuse: per request, never the batch
_VALUE_ERRORS = (ValueError, OverflowError, TypeError)
MAX_KEY_BYTES = 256  # a ledger key, in UTF-8 (what a proof URL and an index can carry)


def _storable(key: str) -> str:
    """key, if a ledger can hold it: ValueError (this request fails alone, 422) otherwise."""
    n = len(key.encode("utf-8"))  # a lone surrogate raises here
    if n > MAX_KEY_BYTES:
        raise ValueError(f"a ledger key is at most {MAX_KEY_BYTES} bytes of UTF-8, this one has {n}")
    return key


def _refuses_values(e: BaseException) -> bool:
    """An error a job's own values can cause (the driver's DataError/InterfaceError included),
    as opposed to a failing store (OperationalError, a deleted database, a full disk)."""
    if isinstance(e, LedgerError):  # the store holds what it should not: not the request's fault
        return False
    return isinstance(e, _VALUE_ERRORS) or type(e).__name__ in ("DataError", "InterfaceError")


def _unprocessable(e: BaseException) -> Unprocessable:
    reason = re.sub(r"^\S+\(\): ", "", str(e))  # not the generated function's name
    return Unprocessable(f"the request holds a value that cannot be stored: {reason}")


@dataclass
class Outcome:
    response: Any
    ledger: str  # "created" (some entry appended), "exists" (all appends were retries), "none"
    entries: list = field(default_factory=list)  # (ledger name, seq, key) appended


@dataclass
class _Job:
    route: dict
    args: tuple
    done: Callable[[Any], None]  # called on the writer thread with an Outcome or an exception


class _Reader:
    """The `Host` (lwas.runtime.native) of a read-only call: clock, configuration, ledger roots
    and system metrics; no appends."""

    def __init__(self, service: "Service", request: dict | None = None):
        self.s = service
        self.keep: list = []  # buffers handed to native code (config values, roots)
        self.failure: BaseException | None = None
        self.request = request or {}  # what the request carries: "idempotency_key"

    def append(self, ledger: int, address: int) -> int:
        return 3  # unreachable: `get` routes cannot append (E0402)

    def now(self) -> int:
        return time.time_ns() // 1000

    def config(self, name: str) -> bytes | None:
        if name == REQUEST_KEY:  # `idempotency_key()`
            key = self.request.get("idempotency_key") or uuid.uuid4().hex
            return key.encode("utf-8")
        return self.s.settings.get(name)

    def ledger_root(self, ledger: int) -> str:
        return self.s.root(ledger)

    def ledger_has(self, ledger: int, key: str) -> bool:
        return self.s.ledgers[ledger].seq_of(key) is not None

    def metric(self, which: int) -> float:
        from lwas.runtime.system import sampler

        return sampler().read(which)

    @property
    def externs(self) -> list:
        return self.s.externs

    def extern(self, index: int, args: list):
        return self.s.call_extern(index, args)


class _Recorder(_Reader):
    """The `Host` of one mutating call (route or timer): also decides each append."""

    def __init__(self, service: "Service"):
        super().__init__(service)
        self.pending: dict[tuple[int, str], bytes] = {}
        self.appends: list[tuple[int, str, bytes]] = []  # new ones, in order
        self.retries = 0

    def append(self, ledger: int, address: int) -> int:
        spec = self.s.ledger_specs[ledger]
        value = read_value(spec["entry"], address)
        key = _storable(str(value[spec["key"]]))  # refused here (alone), not when its batch commits
        payload = encode_value(spec["entry"], value)
        mine = self.pending.get((ledger, key))
        if mine is not None:
            verdict = "exists" if mine == payload else "conflict"
        else:
            verdict = self.s.ledgers[ledger].check(key, payload)
        if verdict == "conflict":
            return 2
        if verdict == "exists":
            self.retries += 1
            return 1
        self.pending[(ledger, key)] = payload
        self.appends.append((ledger, key, payload))
        return 0

    def now(self) -> int:
        return self.s.clock()  # strictly after every entry so far: entry times order replays

    def ledger_has(self, ledger: int, key: str) -> bool:
        return (ledger, key) in self.pending or super().ledger_has(ledger, key)


class _Caller(_Reader):
    """The `Host` of an external route or timer: each append is committed by the writer at once."""

    def __init__(self, service: "Service", request: dict | None = None):
        super().__init__(service, request)
        self.entries: list = []
        self.retries = 0

    def append(self, ledger: int, address: int) -> int:
        spec = self.s.ledger_specs[ledger]
        value = read_value(spec["entry"], address)
        try:
            out = self.s.call({"append": (ledger, value), "method": "APPEND", "path": spec["name"]}, ())
        except LwasRuntimeError as e:  # its `on` block faulted: nothing was appended
            self.failure = e
            return 3
        if out.ledger == "conflict":
            return 2
        if out.ledger == "exists":
            self.retries += 1
            return 1
        self.entries.extend(out.entries)
        return 0


def settings_from_env(service: str, env=os.environ) -> dict[str, bytes]:
    """`config("NAME")` of service `svc` reads LWAS_CONFIG_SVC_NAME, else LWAS_CONFIG_NAME."""
    out = {}
    generic, specific = "LWAS_CONFIG_", f"LWAS_CONFIG_{service.upper()}_"
    for k, v in env.items():
        if k.startswith(generic) and not k.startswith(specific):
            out.setdefault(k[len(generic):], v.encode())
    for k, v in env.items():
        if k.startswith(specific):
            out[k[len(specific):]] = v.encode()
    return out


def _holds(guard: dict, truth: float) -> bool:
    return truth > guard["threshold"] if guard["strict"] else truth >= guard["threshold"]


def _handle(program, route: dict, state, args: tuple):
    """A read-only route: its guards in order, then its handler (one argument conversion for
    all): the handler's result, or GuardRefused naming the first guard below its threshold.
    state is a `Ref` to the committed state. Runs under whatever host the caller set."""
    guards = route["guards"]
    if not guards:
        return program.call(route["handler"], state, *args)
    out = program.call_chain([g["fn"] for g in guards] + [route["handler"]], (state, *args),
                             lambda i, t: _holds(guards[i], t))
    if len(out) <= len(guards):
        g = guards[len(out) - 1]
        raise GuardRefused(g["rule"], out[-1], g["threshold"], g["strict"])
    return out[-1]


def _guard(program, route: dict, state, args: tuple, flat: list | None = None) -> None:
    """The guards of a writing route, in order: GuardRefused at the first below its threshold.
    `flat`: the arguments already converted for the handler (the same parameter types)."""
    guards = route["guards"]
    if not guards:
        return
    out = program.call_chain([g["fn"] for g in guards], (state, *args), lambda i, t: _holds(guards[i], t), flat)
    g = guards[len(out) - 1]
    if not _holds(g, out[-1]):
        raise GuardRefused(g["rule"], out[-1], g["threshold"], g["strict"])


class Service:
    def __init__(self, program, desc: dict, store, private_key, artifact_digest: bytes,
                 origin: str | None = None, max_batch: int = 1024, settings: dict[str, bytes] | None = None,
                 snapshots: Policy | None = None):
        self.program = program
        self.desc = desc
        self.name = desc["name"]
        self.store = store
        self.digest = artifact_digest
        self.max_batch = max_batch
        self.settings = settings_from_env(self.name) if settings is None else settings
        self.ledger_specs = desc["ledgers"]
        self.origin = origin or f"lwas/{self.name}"
        self.signing_key = private_key  # signs checkpoints and snapshots
        self.public_key = private_key.public_key()
        self.reset_ledgers()
        self.kept = KeptState(program, desc)  # the committed state, in native memory
        self.last_time = 0  # the greatest entry time seen: new entries go after it
        self.committed_time = 0  # last_time when the committed state last moved (what a snapshot records)
        policy = snapshots if snapshots is not None else Policy.from_env()
        self.snapshots = Snapshotter(self, shelf_for(store, policy), policy)
        self.restored = None  # the snapshot the state started from (lwas.runtime.snapshot.Loaded)
        self.lock = threading.Lock()  # held while ledgers change (readers take it for proofs)
        self.queue: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.running = False
        self.stopping = threading.Event()
        self.replayed = 0
        self.externs = program.described.get("externs", [])
        self.connectors = bind_connectors(self.externs, desc) if self.externs else []
        self._bodies: dict = {}  # id(route) -> (route, body index, ledgers): see _body_ledgers
        self._shared: dict = {}  # id(route) -> (route, guards and handler share one conversion)

    # ------------------------------------------------------------ start and replay
    def reset_ledgers(self) -> None:
        """Empty ledger objects (committed entry bytes are read back from the store on demand)."""
        read = getattr(self.store, "entry", None)
        self.ledgers = [Ledger(l["name"], f"{self.origin}/{l['name']}", self.signing_key,
                               read=None if read is None else (lambda seq, n=l["name"]: read(n, seq)))
                        for l in self.ledger_specs]
        self.by_name = {l.name: l for l in self.ledgers}

    def start(self) -> None:
        """Restore the newest valid snapshot and replay the entries after it (or replay them
        all), check every ledger against its newest signed checkpoint (lwas.runtime.integrity:
        refused unless it covers exactly the loaded entries, with their root, under this
        service's key), then start the writer thread."""
        t0 = time.perf_counter()
        with self.store.transaction() as tx:  # a consistent snapshot, other writers paused
            from lwas.runtime.schema import start_service

            start_service(self, tx)  # sets self.layouts; refuses a ledger this program cannot read
            self.restored = load_newest(self, self.snapshots.shelf, tx)
            self.replayed = self._replay(tx)
            check_ledgers(self, tx)  # the newest signed checkpoint covers exactly what was loaded
        total = sum(l.size for l in self.ledgers)
        if self.restored is not None:
            log.info("service %s: ready in %.3f s: state from snapshot %s (%d entries), %d entries replayed "
                     "after it", self.name, time.perf_counter() - t0, self.restored.name, self.restored.entries,
                     self.replayed)
        else:
            log.info("service %s: replayed %d entries in %.3f s", self.name, total, time.perf_counter() - t0)
        self.snapshots.start(self.restored.entries if self.restored is not None else 0)
        self.running = True
        self.thread = threading.Thread(target=self._writer, name=f"lwas-writer-{self.name}", daemon=True)
        self.thread.start()
        for t in self.desc.get("timers", []):
            threading.Thread(target=self._timer, args=(t,), name=f"lwas-timer-{self.name}", daemon=True).start()

    def _timer(self, timer: dict) -> None:
        """Submit the timer's handler every interval, like a request (never two queued at once).
        An external timer runs here, on its own thread (see the module docstring)."""
        route = {"handler": timer["handler"], "guards": [], "method": "EVERY", "path": f"line {timer['line']}"}
        if timer.get("external"):
            while not self.stopping.wait(timer["every_us"] / 1e6):
                try:
                    self.run_external(route, ())
                except Exception as e:  # noqa: BLE001 - a failed run is logged; the next one comes
                    log.error("service %s: timer at line %s failed: %s", self.name, timer["line"], e)
            return
        idle = threading.Event()
        idle.set()

        def done(r):
            if isinstance(r, BaseException):
                log.error("service %s: timer at line %s failed: %s", self.name, timer["line"], r)
            idle.set()

        while not self.stopping.wait(timer["every_us"] / 1e6):
            if idle.is_set():
                idle.clear()
                self.submit(route, (), done)

    def catch_up(self, tx) -> int:
        """Load entries appended since we last looked (by anyone) and fold them into the state.

        The rows are checked (Ledger.prepare) and folded first; then the ledgers, the committed
        state and committed_time move together under self.lock, so whoever takes the lock (a
        snapshot) sees a state and the ledger sizes it is the fold of."""
        fresh, loads = [], []
        for i, ledger in enumerate(self.ledgers):
            loading = ledger.prepare(tx.rows(ledger.name, ledger.size - 1))
            if not loading.entries:
                continue
            loads.append((ledger, loading))
            fresh.extend((e.time_micros, i, e.seq, e) for e in loading.entries)
        if not fresh:
            return 0
        fresh.sort(key=lambda f: f[:3])
        kept = self.kept
        state = kept.committed
        last = self.last_time
        for t, i, _, e in fresh:
            spec = self.ledger_specs[i]
            if spec["apply"] is not None:
                state = kept.apply(spec["apply"], state, self.layouts.native(i, e.artifact, e.payload), fold=True)
            if t > last:
                last = t
        with self.lock:
            for ledger, loading in loads:
                ledger.accept(loading)
            kept.commit(state)
            self.last_time = max(self.last_time, last)
            self.committed_time = self.last_time
        return len(fresh)

    def _replay(self, tx) -> int:
        """At start, before anyone reads: fold every stored entry after the ledgers' sizes, page by
        page and merged across ledgers in time order, so memory holds a page of entries, not the
        history. Each page of each ledger gets every check of Ledger.load. The state is committed
        (and its heap compacted when mostly garbage) after every REPLAY_PAGE entries folded."""
        page = REPLAY_PAGE

        def stream(i: int, ledger: Ledger):
            rows = tx.rows(ledger.name, ledger.size - 1)
            while True:
                chunk = list(islice(rows, page))
                if not chunk:
                    return
                for e in ledger.load(chunk):
                    yield e.time_micros, i, e.seq, e
                if len(chunk) < page:
                    return

        kept = self.kept
        state = kept.committed
        last = self.last_time
        n = 0
        for t, i, _, e in heapq.merge(*(stream(i, l) for i, l in enumerate(self.ledgers))):
            spec = self.ledger_specs[i]
            if spec["apply"] is not None:
                state = kept.apply(spec["apply"], state, self.layouts.native(i, e.artifact, e.payload), fold=True)
            if t > last:
                last = t
            n += 1
            if n % page == 0:
                kept.commit(state)
                kept.maybe_compact()  # replay garbage (old path copies) does not pile up
                state = kept.committed
        with self.lock:
            kept.commit(state)
            self.last_time = max(self.last_time, last)
            self.committed_time = self.last_time
        kept.maybe_compact()
        return n

    def restore_snapshot(self, state: bytes, prefixes, last_time: int) -> None:
        """Start from a snapshot (lwas.runtime.snapshot.load_newest, at start, before any entry
        is loaded): the state's encoding, and per ledger the (keys, tree) of the entries it
        covers. ValueError, with nothing changed, when the bytes are not a state."""
        self.kept.restore_encoded(state)
        with self.lock:
            for ledger, (keys, tree) in zip(self.ledgers, prefixes):
                ledger.restore(keys, tree)
            self.last_time = max(self.last_time, last_time)
            self.committed_time = self.last_time

    def cut(self):
        """What the committed state is the fold of: ([(ledger, size)], committed_time). Call it
        under self.lock (snapshot_state(at=...) does)."""
        return [(l, l.size) for l in self.ledgers], self.committed_time

    @property
    def state(self):
        """The committed state as a Python value: O(state), for tools and tests."""
        return self.kept.value()

    def snapshot_state(self, at: Callable[[], Any] | None = None):
        """The committed state's canonical encoding (what a snapshot stores: KeptState.encoded).
        With `at`: (bytes, at()), at() called under self.lock at the instant the state is taken,
        so that it sees exactly the ledgers this state is the fold of (Service.cut). Only
        pinning the state happens under the lock; encoding it (O(state), in native code) runs
        outside every lock, on the pinned, immutable state, while the writer goes on."""
        with ExitStack() as pinned:
            with self.lock:
                _, state = pinned.enter_context(self.kept.reading())
                mark = at() if at is not None else None
            data = self.kept.encoded(state)
        return data if at is None else (data, mark)

    def root(self, ledger: int) -> str:
        """The committed Merkle root of a ledger (what its checkpoint signs), hex."""
        with self.lock:
            l = self.ledgers[ledger]
            return l.tree.root(l.size).hex()

    def clock(self) -> int:
        now = time.time_ns() // 1000
        return now if now > self.last_time else self.last_time + 1

    # ------------------------------------------------------------ requests
    def read(self, route: dict, args: tuple):
        """A read-only route, on the caller's thread, against the committed state (its guards
        first: GuardRefused when one is below its threshold)."""
        with self.kept.reading() as (state, _), hosted(_Reader(self)):
            return _handle(self.program, route, state, args)

    def call_extern(self, index: int, args: list):
        """Run connector `index` with the LwaS arguments (records as their JSON form); its result
        cut to the fields the LwaS result record declares."""
        return self.connectors[index](args)

    def run_external(self, route: dict, args: tuple, request: dict | None = None):
        """An external route or timer, on the caller's thread: the Outcome, or raises
        GuardRefused / lwas.RuntimeError / Unavailable."""
        if not self.running:
            raise Unavailable(f"service {self.name} is not running")
        host = _Caller(self, request)
        with self.kept.reading() as (state, _), hosted(host):
            try:
                if route.get("mutating", True):  # {state, response}: the state part is dropped
                    _guard(self.program, route, state, args)
                    scratch = self.kept.scratch()
                    try:
                        out = self.program.kept(route["handler"])(scratch.address, 0, state, *args)
                        response = self.kept.response(route["handler"], out)
                    finally:
                        scratch.free()
                else:
                    response = _handle(self.program, route, state, args)
            except LwasRuntimeError:
                if host.failure is not None:
                    log.error("service %s: host failure in %s %s: %r", self.name, route["method"],
                              route["path"], host.failure)
                    if isinstance(host.failure, (Unavailable, Unprocessable)):
                        raise host.failure from None
                raise
        verdict = "created" if host.entries else ("exists" if host.retries else "none")
        return Outcome(response, verdict, host.entries)

    def submit(self, route: dict, args: tuple, done: Callable[[Any], None]) -> None:
        """Queue a mutating request; `done` gets its Outcome or exception on the writer thread."""
        if not self.running:
            done(Unavailable(f"service {self.name} is not running"))
            return
        self.queue.put(_Job(route, args, done))

    def call(self, route: dict, args: tuple, timeout: float = 30.0):
        """Blocking form of submit (tools and tests): the Outcome, or raises."""
        box: list = []
        ev = threading.Event()

        def done(r):
            box.append(r)
            ev.set()

        self.submit(route, args, done)
        if not ev.wait(timeout):
            raise Unavailable("timed out waiting for the writer")
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def stop(self) -> None:
        self.running = False
        self.stopping.set()
        self.queue.put(None)
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.snapshots.stop()  # a snapshot being written is finished first (bounded)

    # ------------------------------------------------------------ the writer
    def _writer(self) -> None:
        while True:
            try:
                job = self.queue.get(timeout=IDLE_CATCH_UP)
            except queue.Empty:
                self._idle()
                continue
            if job is None:
                break
            batch = [job]
            while len(batch) < self.max_batch:
                try:
                    j = self.queue.get_nowait()
                except queue.Empty:
                    break
                if j is None:
                    self.queue.put(None)
                    break
                batch.append(j)
            self._run_batch(batch)
        for j in self._drain():
            j.done(Unavailable(f"service {self.name} is stopping"))

    def _drain(self) -> list:
        out = []
        while True:
            try:
                j = self.queue.get_nowait()
            except queue.Empty:
                return out
            if j is not None:
                out.append(j)

    def _idle(self) -> None:
        try:
            with self.store.transaction() as tx:
                self.catch_up(tx)
        except Exception as e:  # noqa: BLE001 - the store may be briefly unreachable
            log.warning("service %s: catch-up failed: %s", self.name, e)
        self.snapshots.note(sum(l.size for l in self.ledgers))  # the time trigger, too

    def _run_batch(self, batch: list[_Job]) -> None:
        """Run the jobs against the committed state and commit them in one transaction. If the
        commit fails on what a job's values hold (_refuses_values), the batch is run again in
        halves, so only the job that cannot be stored fails (Unprocessable), after at most
        log2(len(batch)) splits per such job; a failing store fails the batch (Unavailable)."""
        results: list = []
        try:
            with self.store.transaction() as tx:
                self.catch_up(tx)
                state = self.kept.committed
                for job in batch:
                    r, state = self._run(job, state)
                    results.append(r)
                for ledger in self.ledgers:
                    rows = ledger.staged()
                    if rows:  # the rows and a signed tree head over them commit together
                        tx.append_many(ledger.name, rows)
                        tx.add_checkpoint(ledger.name, *ledger.pending_checkpoint())
            # durable from here
            with self.lock:
                for ledger in self.ledgers:
                    ledger.commit()
                self.kept.commit(state)
                self.committed_time = self.last_time
        except Exception as e:  # noqa: BLE001 - any store failure fails the whole batch
            with self.lock:
                for ledger in self.ledgers:
                    ledger.rollback()
            self._not_committed(batch, e)
            return
        for job, r in zip(batch, results):
            job.done(r)
        self.kept.maybe_compact()  # between batches: the heap is the writer's alone here
        self.snapshots.note(sum(l.size for l in self.ledgers))  # written off this thread when due

    def _not_committed(self, batch: list[_Job], e: Exception) -> None:
        """The batch's transaction failed with e (memory already rolled back): answer its jobs."""
        problem = getattr(self.store, "problem", lambda: None)()
        if problem is None and _refuses_values(e):
            if len(batch) > 1:
                log.warning("service %s: batch of %d not committed (%s): committing it in halves", self.name,
                            len(batch), e)
                half = len(batch) // 2
                self._run_batch(batch[:half])
                self._run_batch(batch[half:])
                return
            log.warning("service %s: a request in %s %s cannot be stored: %s", self.name,
                        batch[0].route.get("method"), batch[0].route.get("path"), e)
            batch[0].done(_unprocessable(e))
            return
        log.error("service %s: batch of %d not committed: %s", self.name, len(batch), problem or e)
        for job in batch:
            job.done(Unavailable("the ledger store failed; nothing was written"))

    def _append(self, ledger: int, value, state):
        """One append of an external handler (_Caller): (Outcome, the state after it)."""
        spec = self.ledger_specs[ledger]
        key = _storable(str(value[spec["key"]]))  # a key that cannot be stored fails this job, not its batch
        payload = encode_value(spec["entry"], value)
        verdict = self.ledgers[ledger].check(key, payload)
        if verdict != "new":
            return Outcome(None, verdict), state
        try:
            if spec["apply"] is not None:
                state = self.kept.apply(spec["apply"], state, value)
        except LwasRuntimeError as e:
            return e, state
        t = self.clock()
        self.last_time = t
        seq, _ = self.ledgers[ledger].stage(key, payload, t, self.digest)
        return Outcome(None, "created", [(spec["name"], seq, key)]), state

    def _run(self, job: _Job, state):
        """One request against `state`: (Outcome or exception, the state after it). Whatever
        goes wrong fails this job alone: values that cannot be converted or encoded give
        Unprocessable, anything unexpected Unavailable (logged with its traceback)."""
        try:
            if "append" in job.route:
                return self._append(*job.route["append"], state)
            return self._route(job.route, job.args, state)
        except LedgerError as e:  # stored bytes that are not what the ledger holds
            log.error("service %s: %s", self.name, e)
            return Unavailable(f"the ledger store failed; nothing was written ({e})"), state
        except _VALUE_ERRORS as e:
            return _unprocessable(e), state
        except Exception as e:  # noqa: BLE001 - one request's failure is not its batch's
            log.exception("service %s: %s %s failed", self.name, job.route.get("method"), job.route.get("path"))
            return Unavailable(f"the request failed; nothing was written ({type(e).__name__})"), state

    def _route(self, route: dict, args: tuple, state):
        retry = self._retry(route, args, state)
        if retry is not None:
            return retry, state
        rec = _Recorder(self)
        ref = Ref(ctypes.addressof(state))
        c = _Call()
        try:
            with hosted(rec):
                flat = (self.program.convert(route["handler"], (ref, *args), c)
                        if self._shares_conversion(route) else None)
                _guard(self.program, route, ref, args, flat)
                new_state, response = self.kept.run(route["handler"], state, args, flat)
        except GuardRefused as g:
            return g, state
        except LwasRuntimeError as e:
            if rec.failure is not None:
                if _refuses_values(rec.failure):  # an append of a value no entry can hold
                    return _unprocessable(rec.failure), state
                if isinstance(rec.failure, LedgerError):
                    log.error("service %s: %s", self.name, rec.failure)
                    return Unavailable(f"the ledger store failed; nothing was written ({rec.failure})"), state
                log.error("service %s: host failure in %s %s: %r", self.name, route["method"],
                          route["path"], rec.failure)
            return e, state
        finally:
            c.keep.clear()  # the converted arguments' buffers: both calls have returned
        entries = []
        for i, key, payload in rec.appends:
            t = self.clock()
            self.last_time = t
            seq, _ = self.ledgers[i].stage(key, payload, t, self.digest)
            entries.append((self.ledgers[i].name, seq, key))
        verdict = "created" if entries else ("exists" if rec.retries else "none")
        return Outcome(response, verdict, entries), new_state

    def _shares_conversion(self, route: dict) -> bool:
        """Whether the route's guards and handler take the same parameter types, so its arguments
        are converted to native form once for all of them (worked out once per route)."""
        hit = self._shared.get(id(route))
        if hit is None or hit[0] is not route:
            names = [g["fn"] for g in route["guards"]]
            hit = self._shared[id(route)] = (route, bool(names) and self.program.same_params(names + [route["handler"]]))
        return hit[1]

    def _retry(self, route: dict, args: tuple, state) -> Outcome | None:
        """A retry of an accepted request answers as a retry even when its guards would refuse
        it now (stock ran out since): if the request's body is an entry of a ledger that already
        holds its key (committed or earlier in this batch), the handler runs WITHOUT the guards;
        when all it does is repeat appends that exist, its Outcome is `exists`. Anything else (a
        new append, a conflict, a fault) drops that run: the request runs as usual, guards first.
        Skipping the guards is safe because such a run writes nothing."""
        if not route["guards"] or not self._holds_body_key(route, args):
            return None
        rec = _Recorder(self)
        try:
            with hosted(rec):
                _, response = self.kept.run(route["handler"], state, args)
        except Exception:  # noqa: BLE001 - not a plain retry: the usual run decides
            return None
        if rec.appends or not rec.retries:
            return None
        return Outcome(response, "exists")

    def _holds_body_key(self, route: dict, args: tuple) -> bool:
        """The route's body is a record of some ledger's entry type, and that ledger holds its key."""
        at, ledgers = self._body_ledgers(route)
        if at is None or type(args[at]) is not dict:
            return False
        value = args[at]
        for i, field in ledgers:
            key = value.get(field)
            if isinstance(key, str) and self.ledgers[i].seq_of(key) is not None:
                return True
        return False

    def _body_ledgers(self, route: dict):
        """(the body's argument index, [(ledger index, key field)] of the ledgers whose entries
        have the body's type), worked out once per route: the type comparison is not per request."""
        hit = self._bodies.get(id(route))
        if hit is None or hit[0] is not route:
            body, params = route.get("body"), route.get("params") or []
            at = params.index(body[0]) if body and body[0] in params else None
            ledgers = [] if at is None else [(i, spec["key"]) for i, spec in enumerate(self.ledger_specs)
                                             if spec["entry"] == body[1]]
            hit = self._bodies[id(route)] = (route, at, ledgers)
        return hit[1], hit[2]
