"""Loading compiled LwaS code into this process and calling it from Python.

`NativeProgram.from_object(object_code, described)` maps the object from memory with MCJIT (no
temporary files, no recompilation) and binds every export as a Python callable built from its
TypeDesc (lwas.abi) with ctypes. Python values follow runtime.values: int, float, bool, str,
datetime, list, the variant name of an enum, a dict for a record, `Money`.

A non-zero status raises lwas.RuntimeError(kind, message, Position) from the error-site table.

Values cross into native memory and back in lwas.runtime.nativevalues.

Verifying the object (its signature) is the loader's job: loading native code is executing it.

Call budget (lwas.backend.budget): each call of an export may run for at most the program's budget, wall
time, else it stops with the fault `timeout` ("the call ran longer than its budget of 1000 ms"),
which unwinds like any other. The budget is LWAS_CALL_BUDGET_MS (a whole number of milliseconds,
default 1000; 0: no limit), read when the program is loaded; `NativeProgram.set_budget_ms`
changes it for later calls (on every thread). A malformed value is a ValueError at load, naming the
variable. This is what keeps a runaway handler from stalling a service for good: the binding keeps
the GIL during a native call, so nothing in Python could interrupt it (not even Ctrl-C).
"""
from __future__ import annotations

import ctypes
import json
import os
import threading
import time

import llvmlite.binding as llvm

from lwas.abi import ARENA_FREE, AXIOM_TABLE, BUDGET_GLOBAL, KEEP_PREFIX
from lwas.errors import Position, RuntimeError as LwasRuntimeError
from lwas.runtime.nativevalues import (INT_MAX, INT_MIN, Ref, _Call, _MoneyC, _owns_memory, _prefixed, _SliceC, ctype,
                                       release, to_python)
BUDGET_ENV = "LWAS_CALL_BUDGET_MS"
DEFAULT_BUDGET_MS = 1000
MAX_BUDGET_MS = INT_MAX // 1_000_000  # the budget is an i64 of nanoseconds in native memory


def budget_ms_from_env(environ=None) -> int:
    """The call budget configured by LWAS_CALL_BUDGET_MS (unset or empty: the default), in ms;
    ValueError naming the variable when it is not a whole number in [0, MAX_BUDGET_MS]."""
    raw = (os.environ if environ is None else environ).get(BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_BUDGET_MS
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_BUDGET_MS:
        raise ValueError(f"{BUDGET_ENV}={raw!r}: expected a whole number of milliseconds from 0 (no limit) "
                         f"to {MAX_BUDGET_MS}")
    return int(raw)


class _Budget:
    """A loaded program's call budget: the i64 global BUDGET_GLOBAL in its native memory (0 for an
    object compiled before budgets existed: nothing to set, calls are not limited)."""

    def __init__(self, address: int):
        self.address = address
        self.ms = 0

    def set(self, ms: int) -> None:
        if type(ms) is not int or not 0 <= ms <= MAX_BUDGET_MS:
            raise ValueError(f"a call budget is a whole number of milliseconds from 0 (no limit) to {MAX_BUDGET_MS}, "
                             f"got {ms!r}")
        if self.address:
            ctypes.c_int64.from_address(self.address).value = ms * 1_000_000
            self.ms = ms


def _bind(address: int, export: dict, sites: list, budget: _Budget | None = None):
    """A Python callable for one export."""
    params = export["params"]
    result = export["result"]
    argtypes = [ctypes.c_void_p]
    for p in params:
        d = p["type"]
        if d == "text" or isinstance(d, dict) and "array" in d:
            argtypes += [ctypes.c_void_p, ctypes.c_int64]
        elif isinstance(d, dict) and "map" in d:
            argtypes.append(ctypes.c_void_p)
        elif isinstance(d, dict) and "money" in d:
            argtypes += [ctypes.c_int64, ctypes.c_int32]
        elif isinstance(d, dict) and "record" in d:
            argtypes.append(ctypes.c_void_p)
        else:
            argtypes.append(ctype(d))
    # PYFUNCTYPE: the call keeps the GIL. Native calls are short, and releasing the GIL would make
    # every call (and every host callback) queue behind other Python threads for it again.
    cfunc = ctypes.PYFUNCTYPE(ctypes.c_int32, *argtypes)(address)
    names = [p["name"] for p in params]
    rtype = None if result == "unit" else ctype(result)
    owns = rtype is not None and _owns_memory(result)
    name = export["name"]

    def call(*args):
        if len(args) != len(params):
            raise TypeError(f"{name}() takes {len(params)} argument(s) ({', '.join(names)}), got {len(args)}")
        c = _Call()
        try:
            return run(c, args)
        finally:
            c.keep.clear()  # release the arguments' buffers (and buffer exports) even on a fault

    def run(c, args):
        return invoke(encode(c, args))

    def encode(c, args) -> list:
        """The arguments in native form (their buffers kept alive by c)."""
        flat = []
        for p, a in zip(params, args):
            try:
                v = c.to_native(p["type"], a)
            except (TypeError, ValueError, OverflowError) as e:
                raise _prefixed(e, f"{name}(): argument {p['name']!r}") from None
            if isinstance(v, (_MoneyC, _SliceC)):
                flat += [v.minor, v.currency] if isinstance(v, _MoneyC) else [v.ptr, v.len]
            elif type(v) is Ref:
                flat.append(v.address)
            elif isinstance(v, ctypes.Structure):
                c.keep.append(v)
                flat.append(ctypes.addressof(v))
            else:
                flat.append(v)
        return flat

    def invoke(flat: list):
        """Call with arguments already in native form: two exports with the same parameter
        types (a route's guard and handler) share one conversion."""
        out = rtype() if rtype is not None else None
        status = cfunc(ctypes.addressof(out) if out is not None else None, *flat)
        if status:
            _fault(sites, status, budget)
        if out is None:
            return None
        if owns:
            try:
                return to_python(result, out)
            finally:
                release(result, out)
        return to_python(result, out.value if hasattr(out, "value") else out)

    call.__name__ = name
    call.__qualname__ = name
    call.encode = encode
    call.invoke = invoke
    call.argtypes = argtypes
    return call


def _bind_kept(address: int, bound, export: dict, sites: list, budget: _Budget | None = None):
    """The kept-arena form of a service function (lwas.backend.codegen._wrapper, keep=True):
    `f(arena_address, adopt_mask, *args)` -> the raw result (a ctypes value that may point into
    the arena; the caller decodes what it needs), or raises lwas.RuntimeError."""
    cfunc = ctypes.PYFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                              *bound.argtypes[1:])(address)
    result = export["result"]
    rtype = None if result == "unit" else ctype(result)
    encode = bound.encode

    def kept(arena: int, adopt: int, *args):
        c = _Call()
        try:
            flat = encode(c, args)
            out = rtype() if rtype is not None else None
            status = cfunc(ctypes.addressof(out) if out is not None else None, arena, adopt, *flat)
        finally:
            c.keep.clear()
        if status:
            _fault(sites, status, budget)
        return out

    def by_address(arena: int, adopt: int, *addresses: int):
        """The same call with every argument already in native form: records in memory (the
        state and an entry, in a replay) by address, or what `NativeProgram.convert` made."""
        out = rtype()
        status = cfunc(ctypes.addressof(out), arena, adopt, *addresses)
        if status:
            _fault(sites, status, budget)
        return out

    kept.by_address = by_address
    return kept


def _fault(sites: list, status: int, budget: _Budget | None = None):
    """Raise the fault of error site `status` (1-based) as an lwas.RuntimeError; a timeout's
    message names the budget in effect."""
    s = sites[status - 1]
    message = s["message"]
    if s["kind"] == "timeout" and budget is not None and budget.ms:
        message = f"the call ran longer than its budget of {budget.ms} ms"
    raise LwasRuntimeError(s["kind"], message, Position(s["file"], s["line"], s["col"],
                                                             s["end_line"], s["end_col"]))


# ---------------------------------------------------------------- the host interface
# What native code calls in the runtime (lwas.backend.codegen.HOST_SYMBOLS). The calls go to the
# `Host` set for the calling thread by `hosted`: the service runtime runs each handler under
# one. Without a host, an append fails as a "host" fault and the clock reads the system clock.

_hosting = threading.local()


class Host:
    """What a service handler's I/O goes to (the service runtime implements these two)."""

    def append(self, ledger: int, address: int) -> int:  # pragma: no cover - interface
        """The entry record at `address` (ledger `ledger`'s entry type): 0 appended, 1 the
        same entry is there already, 2 another entry holds its key."""
        raise NotImplementedError

    def now(self) -> int:  # pragma: no cover - interface
        """Microseconds since the epoch."""
        raise NotImplementedError

    def metric(self, which: int) -> float:  # pragma: no cover - interface
        """System metric number `which` (lwas.semantics.service.METRICS)."""
        raise NotImplementedError

    def ledger_has(self, ledger: int, key: str) -> bool:  # pragma: no cover - interface
        """Whether ledger number `ledger` holds an entry under key (as this call sees it)."""
        raise NotImplementedError

    def ledger_root(self, ledger: int) -> str:  # pragma: no cover - interface
        """The committed Merkle root of ledger number `ledger`, as hex."""
        raise NotImplementedError

    def config(self, name: str) -> bytes | None:  # pragma: no cover - interface
        """A configuration value as UTF-8 (None: unset). The host keeps the bytes alive until
        the native call returns (the native code copies what it keeps)."""
        raise NotImplementedError

    def extern(self, index: int, args: list):  # pragma: no cover - interface
        """Run `extern fn` number `index` (the manifest's "externs") with Python values; its
        result as a Python value of the declared type."""
        raise NotImplementedError


class hosted:
    """`with hosted(host): native_call(...)` routes the call's I/O to host (this thread only)."""

    def __init__(self, host):
        self.host = host

    def __enter__(self):
        self.saved = getattr(_hosting, "host", None)
        _hosting.host = self.host
        return self.host

    def __exit__(self, *exc):
        _hosting.host = self.saved


def read_value(desc, address: int):
    """The Python value of the native value of type desc at address (valid during the call)."""
    v = ctype(desc).from_address(address)
    return to_python(desc, v.value if isinstance(v, ctypes._SimpleCData) else v)


def _host_call(no_host: int, failed: int = 2):
    """The shape every host callback shares: without a host it answers no_host; a Python error
    is kept on the host (`host.failure`, logged by the runtime) and answers `failed`, since it
    must never unwind through native frames."""
    def wrap(f):
        def call(*args):
            host = getattr(_hosting, "host", None)
            if host is None:
                return no_host
            try:
                return f(host, *args)
            except BaseException as e:  # noqa: BLE001 - see the docstring
                host.failure = e
                return failed
        return call
    return wrap


def _utf8(ptr, n: int) -> str:
    return ctypes.string_at(ptr, n).decode("utf-8") if n else ""


@ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p)
@_host_call(no_host=3, failed=3)
def _rt_append(host, ledger, address):
    return host.append(ledger, address)


@ctypes.CFUNCTYPE(ctypes.c_int64)
def _rt_now():
    host = getattr(_hosting, "host", None)
    if host is not None:
        try:
            return host.now()
        except BaseException:
            pass
    return time.time_ns() // 1000


@ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p)
@_host_call(no_host=1)
def _rt_config(host, name_ptr, name_len, out):
    value = host.config(_utf8(name_ptr, name_len))
    if value is None:
        return 1
    _give_text(host, value, out)
    return 0


def _give_text(host, value: bytes, out) -> None:
    """Write a text slice pointing at a copy of value, kept alive by the host for the call."""
    buf = (ctypes.c_char * (len(value) or 1)).from_buffer_copy(value or b"\0")
    host.keep.append(buf)
    ctypes.memmove(out, ctypes.byref(_SliceC(ctypes.addressof(buf), len(value))), ctypes.sizeof(_SliceC))


@ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p)
@_host_call(no_host=1)
def _rt_ledger_root(host, ledger, out):
    _give_text(host, host.ledger_root(ledger).encode("ascii"), out)
    return 0


@ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p)
@_host_call(no_host=1)
def _rt_extern(host, index, argv, out):
    """argv: one pointer per argument (memory form); the result is written to out, its text and
    arrays in buffers the host keeps until the native call returns."""
    x = host.externs[index]
    ptrs = (ctypes.c_void_p * max(len(x["params"]), 1)).from_address(argv)
    args = [read_value(p["type"], ptrs[i]) for i, p in enumerate(x["params"])]
    value = host.extern(index, args)
    c = _Call()
    c.keep = host.keep
    v = c.to_native(x["result"], value)
    if not isinstance(v, (ctypes.Structure, ctypes._SimpleCData)):
        v = ctype(x["result"])(v)
    ctypes.memmove(out, ctypes.addressof(v), ctypes.sizeof(v))
    host.keep.append(v)
    return 0


@ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64)
@_host_call(no_host=2)
def _rt_ledger_has(host, ledger, key_ptr, key_len):
    return 1 if host.ledger_has(ledger, _utf8(key_ptr, key_len)) else 0


@ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
def _rt_config_int(name_ptr, name_len, default, out):
    host = getattr(_hosting, "host", None)
    try:
        raw = host.config(_utf8(name_ptr, name_len)) if host is not None else None
        value = default if raw is None else int(raw.decode("utf-8").strip(), 10)
        if not INT_MIN <= value <= INT_MAX:
            return 2
        ctypes.c_int64.from_address(out).value = value
        return 0
    except (ValueError, UnicodeDecodeError):
        return 2
    except BaseException as e:
        if host is not None:
            host.failure = e
        return 2


@ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_int32)
def _rt_metric(which):
    host = getattr(_hosting, "host", None)
    try:
        if host is not None:
            return host.metric(which)
        from .system import sampler

        return sampler().read(which)
    except BaseException:
        return float("nan")  # a metric that cannot be read is NaN (rules over it fault on NaN)


_HOST_FUNCTIONS = {"lwas_rt_append": _rt_append, "lwas_rt_now": _rt_now, "lwas_rt_config": _rt_config,
                   "lwas_rt_ledger_root": _rt_ledger_root, "lwas_rt_ledger_has": _rt_ledger_has, "lwas_rt_metric": _rt_metric,
                   "lwas_rt_config_int": _rt_config_int, "lwas_rt_extern": _rt_extern}


def _bind_host_symbols() -> None:
    """Done once per process, before any object is mapped (MCJIT resolves them at finalize)."""
    for name, f in _HOST_FUNCTIONS.items():
        llvm.add_symbol(name, ctypes.cast(f, ctypes.c_void_p).value)


class _Namespace:
    """Callables by LwaS name: `ns.fib`, `ns.fuzzy.triangle` or getattr(ns, "fuzzy.triangle")."""


def _tm():
    """A fresh target machine: an MCJIT engine takes ownership of the one it is given."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    _bind_host_symbols()
    return llvm.Target.from_default_triple().create_target_machine()


class NativeProgram:
    def __init__(self, engine, described: dict, budget_ms: int | None = None):
        """budget_ms: the call budget (None: LWAS_CALL_BUDGET_MS, see the module docstring)."""
        self._engine = engine  # keeps the mapped code alive
        self.described = described
        self._budget = _Budget(engine.get_global_value_address(BUDGET_GLOBAL))
        self._budget.set(budget_ms_from_env() if budget_ms is None else budget_ms)
        self.fn = _Namespace()
        self._calls: dict = {}
        self._tests: dict = {}
        self._kept: dict = {}
        self._free_arena = None
        sites = described["error_sites"]
        for e in described["exports"]:
            f = _bind(engine.get_function_address(e["symbol"]), e, sites, self._budget)
            f.engine = engine  # a bound function keeps the mapped code alive on its own
            if e["kind"] == "test":
                self._tests[e["name"]] = f
                continue
            self._calls[e["name"]] = f
            setattr(self.fn, e["name"], f)
            parts = e["name"].split(".")
            ns = self.fn
            for part in parts[:-1]:
                if not isinstance(getattr(ns, part, None), _Namespace):
                    setattr(ns, part, _Namespace())
                ns = getattr(ns, part)
            setattr(ns, parts[-1], f)
        self.tests = list(self._tests)
        self._axioms = [a["name"] for a in described["axioms"]]
        self._table = engine.get_global_value_address(AXIOM_TABLE)

    @classmethod
    def from_object(cls, object_code: bytes, described: dict, budget_ms: int | None = None) -> "NativeProgram":
        ee = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _tm())
        ee.add_object_file(llvm.ObjectFileRef.from_data(object_code))
        ee.finalize_object()
        return cls(ee, described, budget_ms)

    @property
    def budget_ms(self) -> int:
        """The call budget in effect, in ms (0: no limit)."""
        return self._budget.ms

    def set_budget_ms(self, ms: int) -> None:
        """Sets the budget of later calls of every export, on every thread (0: no limit)."""
        self._budget.set(ms)

    def call(self, name: str, *args):
        return self._calls[name](*args)

    def call_chain(self, names: list[str], args: tuple, go_on=lambda i, r: True, flat: list | None = None) -> list:
        """Call each export with the same arguments, converted once (their parameter types must
        be the same), while go_on(index, result) holds: the results so far. `flat`: the
        arguments already converted (`convert`), by a caller that uses them again."""
        calls = [self._calls[n] for n in names]
        c = _Call()
        try:
            flat = calls[0].encode(c, args) if flat is None else flat
            out = []
            for i, f in enumerate(calls):
                out.append(f.invoke(flat))
                if i + 1 < len(calls) and not go_on(i, out[-1]):
                    break
            return out
        finally:
            c.keep.clear()

    def convert(self, name: str, args: tuple, c: "_Call") -> list:
        """`args` in the native form export `name` takes, their buffers kept alive by `c` (the
        caller clears c.keep once every call that uses them has returned)."""
        return self._calls[name].encode(c, args)

    def same_params(self, names: list[str]) -> bool:
        """Whether the exports take the same parameter types (one conversion serves them all)."""
        types = {json.dumps([p["type"] for p in e["params"]], sort_keys=True)
                 for e in self.described["exports"] if e["name"] in names}
        return len(types) == 1

    def kept(self, name: str):
        """The kept-arena form of service function `name` (see _bind_kept), bound on first use."""
        f = self._kept.get(name)
        if f is None:
            export = next(e for e in self.described["exports"] if e["name"] == name)
            f = self._kept[name] = _bind_kept(self._engine.get_function_address(KEEP_PREFIX + name),
                                              self._calls[name], export, self.described["error_sites"],
                                              self._budget)
        return f

    def symbol_address(self, name: str) -> int:
        """The address of an exported function of the object (0 when it has none by that name)."""
        return self._engine.get_function_address(name)

    def free_arena(self, arena_address: int) -> None:
        """Frees every block of a kept arena (its head and byte count are then stale)."""
        if self._free_arena is None:
            self._free_arena = ctypes.PYFUNCTYPE(None, ctypes.c_void_p)(
                self._engine.get_function_address(ARENA_FREE))
        self._free_arena(arena_address)

    def address(self, symbol: str) -> int:
        """The native address of an exported symbol, for callers that build their own ctypes
        prototype (benchmarks, embedding). Valid while this program is alive."""
        return self._engine.get_function_address(symbol)

    def run_test(self, name: str) -> None:
        self._tests[name]()

    def truth(self, name: str) -> float:
        """An axiom's effective truth, read from the table in native memory."""
        i = self._axioms.index(name)
        return ctypes.c_double.from_address(self._table + 8 * i).value
