"""Services as ordinary items: the `service` stage, between parse and resolve.

A `service` compiles to plain functions over an explicit state record, so the type checker,
the native back end and the reference evaluator need nothing service-specific but two host
built-ins. For `service economy { ledger transactions: Transaction by id; state balance: ...;
on transactions(tx) {...}; post "/tx" (tx: Transaction) -> Receipt {...} }` it adds:

    record economy.State { balance: money ... }        the state, one field per `state`
    fn economy$init() -> economy.State                   the initial state
    fn economy$copy(state$: economy.State) -> economy.State  the state itself (the runtime calls
                                                         its kept form to move the state to a
                                                         new arena: lwas.runtime.state)
    fn economy$on$transactions(state$: economy.State, tx: Transaction) -> economy.State
    record economy$route$0$Reply { state: economy.State, response: Receipt }
    fn economy$route$0(state$: economy.State, tx: Transaction) -> economy$route$0$Reply
    fn economy$route$0$guard(state: economy.State, tx: Transaction) -> truth   (one per guard)

Names with `$` (and the dotted record name) cannot be written in LwaS, so they never collide
with the user's. In a handler, `state` is a local copy of the state; `append L(v)` becomes
`if append$(k, v) { state = economy$on$L(state, v) }`: the runtime appends v to ledger k (its
answer says whether the key was new) and the `on` block moves the state, exactly as a replay
of the ledger will. Handlers cannot assign the state themselves, and `on` blocks cannot
append or read the clock: so the state is always a fold of the `on` blocks over the ledger,
and a restart rebuilds it. `now()` (the host clock), `config("NAME")` (a configuration value,
text), `ledger_root(LEDGER)` (the committed Merkle root, hex) and the system metrics
(`cpu_percent()`, `ram_used_gb()`, `ram_total_gb()`, `uptime_secs()`) are only available in route
handlers and guards, for the same reason.

`describe` (after type checking) checks what needs types and produces the plain-data service
descriptions that travel in the artifact's manifest to the runtime.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass, replace

from lwas.syntax import tree as ast
from lwas.abi import REQUEST_KEY
from lwas.syntax.diagnostics import Label, Sink
from lwas.syntax.source import Span

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
# System metrics a route may read (sampled by the host): name -> index of `metric$`.
METRICS = {"cpu_percent": 0, "ram_used_gb": 1, "ram_total_gb": 2, "uptime_secs": 3}
# What reads the host: available in route handlers, guards and timers only (rewritten to the
# `$` built-ins there); unless the module declares an item of the same name.
HOST_CALLS = frozenset({"now", "config", "config_int", "ledger_root", "ledger_has", "idempotency_key", *METRICS})
# `signed "NAME"` routes: webhooks whose raw body the runtime verifies (lwas.runtime.connectors).
SIGNERS = ("stripe",)
_PATH = re.compile(r"^(/([A-Za-z0-9._~!$&'()*+,;=:@-]+|\{[A-Za-z_][A-Za-z0-9_]*\}))+$|^/$")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class RouteInfo:
    decl: ast.RouteDecl
    handler: str  # fn name
    guards: list = field(default_factory=list)  # {"fn", "rule", "threshold", "strict"}, in order
    path_params: list[str] = field(default_factory=list)
    body: str | None = None  # the body parameter's name
    query: list[str] = field(default_factory=list)  # a `get` route's query parameters
    external: bool = False  # it calls an `extern fn`: the runtime runs it off the writer


@dataclass
class ServiceInfo:
    decl: ast.ServiceDecl
    state: str  # the state record's name
    init: str
    copy: str = ""
    ledgers: list[ast.LedgerDecl] = field(default_factory=list)
    reducers: dict[str, str] = field(default_factory=dict)  # ledger -> fn name
    routes: list[RouteInfo] = field(default_factory=list)
    timers: list[tuple[str, int, ast.EveryDecl, bool]] = field(default_factory=list)  # (fn, µs, decl, external)


_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h)$")
_UNIT_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}


def _name(n: str, span: Span) -> ast.Name:
    return ast.Name(n, span)


def _type(n: str, span: Span) -> ast.NamedType:
    return ast.NamedType(ast.QualName((n,), span), span)


def expand(tree: ast.Module, sink: Sink, is_root: bool) -> tuple[ast.Module, list[ServiceInfo]]:
    """The module with each `service` replaced by its items (see the module docstring)."""
    externs = {i.name: i for i in tree.items if isinstance(i, ast.FnDecl) and i.extern is not None}
    for it in tree.items:  # (an `append` outside a service is the checker's E0402)
        if externs and not isinstance(it, ast.ServiceDecl):
            _no_externs(it, externs, sink, "outside a service")
    if not any(isinstance(i, ast.ServiceDecl) for i in tree.items):
        return tree, []
    items: list = []
    infos: list[ServiceInfo] = []
    names = {getattr(i, "name", None) for i in tree.items}
    for it in tree.items:
        if not isinstance(it, ast.ServiceDecl):
            items.append(it)
            continue
        for m in it.members:
            if isinstance(m, ast.OnDecl):
                _no_externs(m.body, externs, sink, "in an `on` block")
            elif isinstance(m, (ast.StateDecl, ast.RouteDecl)):
                what = "in a route guard" if isinstance(m, ast.RouteDecl) else "in a state's initial value"
                _no_externs(m.guard if isinstance(m, ast.RouteDecl) else m.value, externs, sink, what)
        if not is_root:
            sink.error("E0403", f"service `{it.name}` is declared in an imported module", it.name_span,
                       label="services are served from the root file only",
                       help="declare the service in the file you pass to `lwasc serve`; "
                            "import its records, rules and functions from here")
            continue
        new, info = _Expander(it, sink, HOST_CALLS - names, set(externs)).run()
        items.extend(new)
        infos.append(info)
    return replace(tree, items=tuple(items)), infos


def _calls(n, names) -> list:
    """The calls in n (a node, or None) of a function named in names, outermost first."""
    if n is None:
        return []
    return [c for c in ast.walk(n) if c.__class__ is ast.Call and c.callee.__class__ is ast.Name
            and c.callee.name in names]


def _no_externs(n, externs: dict, sink: Sink, where: str) -> None:
    """E0407 for each call of an `extern fn` in n: only route handlers and timers may call out."""
    for c in _calls(n, externs):
        d = externs[c.callee.name]
        sink.error("E0407", f"external call `{d.name}` {where}", c.callee.span,
                   label="calls out of the program", labels=(Label(d.name_span, "declared `extern` here"),),
                   help="call it in a route handler or a timer (`every`); pass its result to "
                        "functions as a value, or append it to a ledger")


class _Expander:
    def __init__(self, svc: ast.ServiceDecl, sink: Sink, host_calls: set[str], externs: set[str] = frozenset()):
        self.svc = svc
        self.externs = externs
        self.sink = sink
        self.host_calls = host_calls  # `now`, `config` unless the module defines an item so named
        self.p = svc.name
        self.ledgers: dict[str, tuple[int, ast.LedgerDecl]] = {}
        self.reducers: dict[str, str] = {}
        self.temp = 0

    def run(self) -> tuple[list, ServiceInfo]:
        svc, p = self.svc, self.p
        s = svc.span
        members = svc.members
        state_name = f"{p}.State"
        info = ServiceInfo(svc, state_name, f"{p}${'init'}")
        seen: dict[str, Span] = {}
        states: list[ast.StateDecl] = []
        for m in members:
            if isinstance(m, (ast.LedgerDecl, ast.StateDecl)):
                if m.name in seen:
                    self.sink.error("E0102", f"the name `{m.name}` is defined more than once in service `{p}`",
                                    m.name_span, label=f"`{m.name}` redefined here",
                                    labels=(Label(seen[m.name], "first defined here"),),
                                    help="rename one of them")
                    continue
                seen[m.name] = m.name_span
                if isinstance(m, ast.LedgerDecl):
                    self.ledgers[m.name] = (len(info.ledgers), m)
                    info.ledgers.append(m)
                else:
                    states.append(m)
        out: list = [ast.FnDecl(f"{p}$ledger${d.name}", d.name_span, (ast.Param("entry", d.entry, d.entry.span),),
                                None, ast.Block((), d.span), None, False, d.span)  # types the entry
                     for d in info.ledgers]
        out.append(ast.RecordDecl(state_name, svc.name_span,
                                    tuple(ast.RecordField(m.name, m.type, m.doc, m.span) for m in states),
                                    f"The state of service `{p}`.", False, s))
        init = ast.Call(_name(state_name, s), tuple(ast.Arg(m.value, m.name, m.span) for m in states), s)
        out.append(ast.FnDecl(info.init, svc.name_span, (), _type(state_name, s), init, None, False, s))
        info.copy = f"{p}$copy"
        out.append(ast.FnDecl(info.copy, svc.name_span, (ast.Param("state$", _type(state_name, s), s),),
                              _type(state_name, s), _name("state$", s), None, False, s))
        for m in members:
            if isinstance(m, ast.OnDecl):
                fn = self.on(m, state_name)
                if fn is not None:
                    out.append(fn)
        info.reducers = dict(self.reducers)
        routes: dict[tuple[str, str], ast.RouteDecl] = {}
        for m in members:
            if isinstance(m, ast.RouteDecl):
                k = (m.method, _PARAM.sub("{}", m.path))
                if k in routes:
                    self.sink.error("E0403", f"route `{m.method} {m.path}` is declared twice", m.path_span,
                                    label="declared again here",
                                    labels=(Label(routes[k].path_span, "first declared here"),),
                                    help="merge the two handlers, or give one another path")
                    continue
                routes[k] = m
                out.extend(self.route(m, len(info.routes), state_name, info))
        for m in members:
            if isinstance(m, ast.EveryDecl):
                out.extend(self.timer(m, len(info.timers), state_name, info))
        return out, info

    # ------------------------------------------------------------ members
    def on(self, m: ast.OnDecl, state_name: str):
        entry = self.ledgers.get(m.ledger)
        if entry is None:
            self.unknown_ledger(m.ledger, m.ledger_span)
            return None
        if m.ledger in self.reducers:
            self.sink.error("E0102", f"ledger `{m.ledger}` has more than one `on` block", m.ledger_span,
                            label="second `on` block here", help="merge them into one")
            return None
        name = f"{self.p}$on${m.ledger}"
        self.reducers[m.ledger] = name
        s = m.span
        body = self.rewrite(m.body, "on")
        stmts = (ast.Let("state", s, True, None, _name("state$", s), s),) + body.stmts + \
                (ast.Return(_name("state", s), s),)
        params = (ast.Param("state$", _type(state_name, s), s), ast.Param(m.param, entry[1].entry, m.param_span))
        return ast.FnDecl(name, m.ledger_span, params, _type(state_name, s), ast.Block(stmts, body.span),
                          None, False, s)

    def route(self, m: ast.RouteDecl, index: int, state_name: str, info: ServiceInfo) -> list:
        s = m.span
        name = f"{self.p}$route${index}"
        r = RouteInfo(m, name, external=bool(_calls(m.body, self.externs)))
        ok = self.check_route(m, r)
        if m.ret is None:
            self.sink.error("E0403", f"route `{m.method} {m.path}` has no response type", m.path_span,
                            label="add `-> Type` after the parameters",
                            help="a route answers with a value: e.g. `-> Receipt`")
            ok = False
        if not ok:
            return []
        mutating = m.method in MUTATING
        out = []
        if mutating:
            reply = f"{name}$Reply"
            out.append(ast.RecordDecl(reply, m.path_span, (
                ast.RecordField("state", _type(state_name, s), None, s),
                ast.RecordField("response", m.ret, None, m.ret.span)), None, False, s))
            body = self.rewrite(m.body, "post", reply)
            stmts = (ast.Let("state", s, True, None, _name("state$", s), s),) + body.stmts
            params = (ast.Param("state$", _type(state_name, s), s),) + m.params
            out.append(ast.FnDecl(name, m.path_span, params, _type(reply, s), ast.Block(stmts, body.span),
                                  m.doc, False, s))
        else:
            body = self.rewrite(m.body, "get")
            params = (ast.Param("state", _type(state_name, s), s),) + m.params
            out.append(ast.FnDecl(name, m.path_span, params, m.ret, body, m.doc, False, s))
        for i, (g, rule, threshold, strict) in enumerate(self.guards(m.guard) if m.guard is not None else ()):
            g = self.rewrite(ast.Block((ast.ExprStmt(g, g.span),), g.span), "get").stmts[0].expr
            fn = f"{name}$guard" + (f"{i}" if i else "")
            params = (ast.Param("state", _type(state_name, s), s),) + tuple(replace(p) for p in m.params)
            out.append(ast.FnDecl(fn, g.span, params, _type("truth", g.span), g, None, False, g.span))
            r.guards.append({"fn": fn, "rule": rule, "threshold": threshold, "strict": strict})
        info.routes.append(r)
        return out

    def timer(self, m: ast.EveryDecl, index: int, state_name: str, info: ServiceInfo) -> list:
        """`every "10s" { ... }` → `fn svc$every$i(state$: State) -> {state}`, run by the runtime's
        timer through the writer like a request (so its appends are durable and idempotent)."""
        d = _DURATION.match(m.interval)
        us = int(d.group(1)) * _UNIT_US[d.group(2)] if d else 0
        if us < 10_000:
            self.sink.error("E0406", f"`{m.interval}` is not a timer interval", m.interval_span,
                            label="expected a whole number of ms, s, m or h, at least 10ms",
                            help='e.g. `every "10s" { ... }` or `every "5m" { ... }`')
            return []
        s = m.span
        name = f"{self.p}$every${index}"
        reply = f"{name}$Reply"
        body = self.rewrite(m.body, "post", reply, timer=True)
        done = ast.Return(ast.Call(_name(reply, s), (ast.Arg(_name("state", s), "state", s),), s), s)
        stmts = (ast.Let("state", s, True, None, _name("state$", s), s),) + body.stmts + (done,)
        info.timers.append((name, us, m, bool(_calls(m.body, self.externs))))
        return [ast.RecordDecl(reply, m.interval_span, (ast.RecordField("state", _type(state_name, s), None, s),),
                               None, False, s),
                ast.FnDecl(name, m.interval_span, (ast.Param("state$", _type(state_name, s), s),), _type(reply, s),
                           ast.Block(stmts, body.span), None, False, s)]

    def check_route(self, m: ast.RouteDecl, r: RouteInfo) -> bool:
        if not _PATH.match(m.path):
            self.sink.error("E0403", f"`{m.path}` is not a route path", m.path_span,
                            label="expected `/segment/{param}/...`",
                            help="a path starts with `/`; a `{name}` segment is bound to the parameter `name`")
            return False
        declared = {p.name: p for p in m.params}
        r.path_params = _PARAM.findall(m.path)
        ok = True
        for n in r.path_params:
            if n not in declared:
                self.sink.error("E0403", f"path parameter `{n}` is not a parameter of the route", m.path_span,
                                label=f"`{{{n}}}` needs a parameter `{n}`",
                                help=f"add `{n}: text` (or `int`) to the route's parameters")
                ok = False
        rest = [p for p in m.params if p.name not in r.path_params]
        for p in m.params:
            if p.name == "state":
                self.sink.error("E0402", "a route parameter cannot be named `state`", p.span,
                                label="`state` is the service's state here", help="rename the parameter")
                ok = False
        if m.signed is not None and (m.signed not in SIGNERS or m.method not in MUTATING):
            what = f"`{m.signed}` is not a webhook signer" if m.signed not in SIGNERS else \
                f"a `{m.method.lower()}` route has no body to verify"
            self.sink.error("E0403", what, m.signed_span, label="after `signed`",
                            help=f"`signed \"stripe\"` on a `post` route: the runtime checks the body's "
                                 f"signature before the handler sees it (signers: {', '.join(SIGNERS)})")
            ok = False
        for p in m.params:
            if p.default is not None and (p.name in r.path_params or m.method in MUTATING):
                where = "a path parameter" if p.name in r.path_params else "a request body"
                self.sink.error("E0403", f"`{p.name}` has a default, but it is {where}", p.default.span,
                                label="only a `get` route's query parameters have defaults",
                                help="drop the default")
                ok = False
        if m.method not in MUTATING:  # the parameters outside the path come from the query string
            r.query = [p.name for p in rest]
        elif len(rest) > 1:
            self.sink.error("E0403", f"route `{m.path}` has more than one request body", rest[1].span,
                            label="a second parameter outside the path",
                            help="a route takes one body: put these values in one record")
            ok = False
        elif rest:
            r.body = rest[0].name
        return ok

    def guards(self, e) -> list:
        """`rule(args) >= 0.9 and other(args) > 0.5` → [(call, rule, threshold, strict)]: the
        runtime computes each in order and refuses at the first below its threshold, naming it."""
        if isinstance(e, ast.Binary) and e.op == "and":
            return self.guards(e.left) + self.guards(e.right)
        if isinstance(e, ast.Binary) and e.op in (">=", ">") and isinstance(e.left, ast.Call) \
                and isinstance(e.right, (ast.FloatLit, ast.IntLit)) and 0.0 <= e.right.value <= 1.0:
            return [(e.left, _text(e.left.callee), float(e.right.value), e.op == ">")]
        self.sink.error("E0404", "a route guard must read `rule(...) >= threshold`", e.span,
                        label="not a rule compared with a number in [0, 1]",
                        help="e.g. `requires valid_amount(tx) >= 0.9`: the request is refused (422) "
                             "when the rule's truth is below the threshold; join several with `and`")
        return []

    def metric(self, call: ast.Call):
        """`cpu_percent()` → `metric$(0)`; `uptime_secs()` (an int) → `int(metric$(3))`."""
        s = call.span
        read = ast.Call(_name("metric$", call.callee.span), (ast.Arg(ast.IntLit(METRICS[call.callee.name], s), None, s),), s)
        if call.callee.name == "uptime_secs":
            return ast.Call(_name("int", s), (ast.Arg(read, None, s),), s)
        return read

    def ledger_root(self, call: ast.Call):
        """`ledger_root(transactions)` → `ledger_root$(k)`, `ledger_has(transactions, id)` →
        `ledger_has$(k, id)`: a ledger is named, not passed."""
        fn = call.callee.name
        n_args = 1 if fn == "ledger_root" else 2
        usage = "ledger_root(LEDGER)" if fn == "ledger_root" else "ledger_has(LEDGER, key)"
        arg = call.args[0].value if len(call.args) == n_args else None
        rest = tuple(call.args[1:]) if len(call.args) == n_args else ()
        if arg.__class__ is not ast.Name or arg.name not in self.ledgers:
            if arg.__class__ is ast.Name:
                self.unknown_ledger(arg.name, arg.span)
            else:
                self.sink.error("E0401", f"`{fn}` takes the name of one of the service's ledgers",
                                call.span, label=f"expected `{usage}`",
                                help=f"e.g. `{usage.replace('LEDGER', 'transactions').replace('key', 'tx.id')}`")
            rest = (ast.Arg(ast.TextLit("", call.span), None, call.span),) if fn == "ledger_has" else ()
            return ast.Call(_name(fn + "$", call.span), (ast.Arg(ast.IntLit(0, call.span), None, call.span),) + rest,
                            call.span)
        k = self.ledgers[arg.name][0]
        return ast.Call(_name(fn + "$", call.callee.span), (ast.Arg(ast.IntLit(k, arg.span), None, arg.span),) + rest,
                        call.span)

    def unknown_ledger(self, name: str, span: Span) -> None:
        known = ", ".join(f"`{n}`" for n in self.ledgers) or "none"
        self.sink.error("E0401", f"service `{self.p}` has no ledger `{name}`", span,
                        label="unknown ledger", help=f"declare it with `ledger {name}: Record by key_field`; "
                                                     f"ledgers of `{self.p}`: {known}")

    # ------------------------------------------------------------ bodies
    def rewrite(self, body: ast.Block, where: str, reply: str | None = None, timer: bool = False) -> ast.Block:
        """`where`: "on", "get" or "post" (any mutating route, or a timer)."""

        def visit(n):
            c = n.__class__
            if c is ast.Block:
                stmts = []
                for st in n.stmts:
                    stmts.extend(stmt(st))
                return ast.Block(tuple(stmts), n.span)
            if c is ast.Call and where != "on" and n.callee.__class__ is ast.Name \
                    and n.callee.name in ("ledger_root", "ledger_has") and n.callee.name in self.host_calls:
                return self.ledger_root(_map(n, visit))
            if c is ast.Call and where != "on" and n.callee.__class__ is ast.Name \
                    and n.callee.name in METRICS and n.callee.name in self.host_calls and not n.args:
                return self.metric(n)
            if c is ast.Call and where != "on" and n.callee.__class__ is ast.Name \
                    and n.callee.name == "idempotency_key" and "idempotency_key" in self.host_calls and not n.args:
                return ast.Call(_name("config$", n.callee.span), (ast.Arg(ast.TextLit(REQUEST_KEY, n.span), None, n.span),),
                                n.span)
            if c is ast.Call and where != "on" and n.callee.__class__ is ast.Name \
                    and n.callee.name in self.host_calls:
                return replace(n, callee=_name(n.callee.name + "$", n.callee.span),
                               args=tuple(visit(a) for a in n.args))
            if c is ast.Let and n.name == "state":
                self.sink.error("E0402", "`state` cannot be redeclared in a service", n.name_span,
                                label="`state` is the service's state here", help="pick another name")
            if c is ast.Assign and where == "post" and _root(n.target) == "state":
                self.sink.error("E0402", "a route cannot change the service state directly", n.target.span,
                                label="assignment to the state",
                                help="append an entry to a ledger; its `on` block changes the state, "
                                     "so a replay of the ledger rebuilds it")
            if c is ast.Return and where == "on":
                self.sink.error("E0402", "`return` in an `on` block", n.span,
                                label="an `on` block ends by itself",
                                help="remove the `return`; use `if` to skip a part of the block")
            if c is ast.Return and timer:
                if n.value is not None:
                    self.sink.error("E0406", "a timer returns no value", n.value.span,
                                    label="nobody receives it", help="write `return` alone to end the run early")
                return ast.Return(ast.Call(_name(reply, n.span), (ast.Arg(_name("state", n.span), "state", n.span),),
                                           n.span), n.span)
            if c is ast.Return and reply is not None and n.value is not None:
                v = visit(n.value)
                args = (ast.Arg(_name("state", n.span), "state", n.span), ast.Arg(v, "response", v.span))
                return ast.Return(ast.Call(_name(reply, n.span), args, n.span), n.span)
            return _map(n, visit)

        def stmt(st) -> list:
            if st.__class__ is not ast.Append:
                return [visit(st)]
            if where != "post":
                what = "an `on` block" if where == "on" else "a `get` route"
                self.sink.error("E0402", f"`append` in {what}", st.span,
                                label="ledgers are written only by post/put/patch/delete routes",
                                help="append in a mutating route; `on` blocks only follow appends")
                return []
            entry = self.ledgers.get(st.ledger)
            if entry is None:
                self.unknown_ledger(st.ledger, st.ledger_span)
                return []
            k, decl = entry
            s = st.span
            self.temp += 1
            tmp = f"append${self.temp}"
            let = ast.Let(tmp, st.value.span, False, decl.entry, visit(st.value), s)
            call = ast.Call(_name("append$", st.ledger_span), (
                ast.Arg(ast.IntLit(k, st.ledger_span), None, s), ast.Arg(_name(tmp, s), None, s)), s)
            reducer = self.reducers.get(st.ledger)
            then = ()
            if reducer is not None:
                step = ast.Call(_name(reducer, s), (ast.Arg(_name("state", s), None, s),
                                                     ast.Arg(_name(tmp, s), None, s)), s)
                then = (ast.Assign(_name("state", s), "=", step, s),)
            return [let, ast.If(call, ast.Block(then, s), None, s)]

        return visit(body)


# ---------------------------------------------------------------- describe (after check)

def describe(program, checked, sink: Sink) -> list[dict]:
    """The root module's services as plain data for the artifact manifest, after checking what
    needs types: ledger entries are records keyed by a text or int field, a body is a record,
    path parameters are int, text or enum values."""
    from lwas.semantics.types import BOOL, INT, TEXT, EnumT, RecordT, type_desc

    root = program.root
    out = []
    for info in root.services:
        svc = info.decl

        def sig(name: str):
            return checked.signatures.get(root.items.get(name))

        ok = True
        ledgers = []
        for d in info.ledgers:
            s = sig(f"{svc.name}$ledger${d.name}")
            t = s.params[0][1] if s else None
            if t.__class__ is not RecordT:
                if t is not None and t.__class__.__name__ != "ErrorT":
                    sink.error("E0405", f"ledger `{d.name}` holds `{t}`, not a record", d.entry.span,
                               label="expected a record type",
                               help="declare a record for the entries, e.g. `record Transaction { id: text ... }`")
                ok = False
                continue
            kt = t.fields.get(d.key)
            if kt is not TEXT and kt is not INT:
                what = f"is `{kt}`" if kt is not None else f"is not a field of `{t}`"
                sink.error("E0405", f"ledger key `{d.key}` {what}", d.key_span,
                           label="the key must be a `text` or `int` field of the entry",
                           help=f"fields of `{t}`: " + ", ".join(f"`{n}: {ft}`" for n, ft in t.fields.items()))
                ok = False
                continue
            ledgers.append({"name": d.name, "entry": type_desc(t), "key": d.key,
                            "apply": info.reducers.get(d.name), "doc": d.doc})
        routes = []
        for r in info.routes:
            m = r.decl
            s = sig(r.handler)
            if s is None:
                ok = False
                continue
            params = dict(s.params[1:])
            for n in r.path_params:
                t = params.get(n)
                if t is not None and t is not INT and t is not TEXT and t.__class__ is not EnumT:
                    span = next(p.span for p in m.params if p.name == n)
                    sink.error("E0403", f"path parameter `{n}` is `{t}`", span,
                               label="a path segment is text: `int`, `text` or an enum",
                               help="take structured values in the request body (a `post` route)")
                    ok = False
            body = None
            if r.body is not None:
                t = params.get(r.body)
                if t.__class__ is not RecordT:
                    span = next(p.span for p in m.params if p.name == r.body)
                    sink.error("E0403", f"the request body `{r.body}` is `{t}`, not a record", span,
                               label="a body is a JSON object: declare a record for it",
                               help=f"bind it in the path (`{{{r.body}}}`) if it is a single value")
                    ok = False
                    continue
                body = [r.body, type_desc(t)]
            query = []
            for p in m.params:
                if p.name not in r.query:
                    continue
                t = params.get(p.name)
                if t is not None and t is not INT and t is not TEXT and t is not BOOL and t.__class__ is not EnumT:
                    sink.error("E0403", f"query parameter `{p.name}` is `{t}`", p.span,
                               label="a query parameter is `int`, `text`, `bool` or an enum",
                               help="take structured values in the request body (a `post` route)")
                    ok = False
                    continue
                query.append([p.name, type_desc(t), checked.param_defaults.get(p)])
            ret = s.ret.fields["response"] if m.method in MUTATING else s.ret
            routes.append({
                "method": m.method, "path": m.path, "handler": r.handler, "guards": r.guards,
                "params": [n for n, _ in s.params[1:]], "query": query,
                "path_params": [[n, type_desc(params[n])] for n in r.path_params if n in params],
                "body": body, "response": type_desc(ret), "mutating": m.method in MUTATING,
                "external": r.external, "signed": m.signed, "status_field": _status_field(ret),
                "doc": m.doc, "file": m.span.file, "line": m.span.line,
            })
        if ok:
            state = checked.records[root.items[info.state]]
            timers = [{"handler": fn, "every_us": us, "line": m.span.line, "external": ext}
                      for fn, us, m, ext in info.timers]
            out.append({"name": svc.name, "doc": svc.doc, "file": svc.span.file, "line": svc.span.line,
                        "state": type_desc(state), "init": info.init, "copy": info.copy,
                        "ledgers": ledgers, "routes": routes,
                        "timers": timers})
    return out


def _status_field(t) -> str | None:
    """A response record's `http_status: int` field sets the HTTP status (and is not sent)."""
    from lwas.semantics.types import INT, RecordT

    return "http_status" if t.__class__ is RecordT and t.fields.get("http_status") is INT else None


def _map(n, f):
    """n with f applied to each child node (tuples of nodes included); n itself if none changed."""
    if not is_dataclass(n) or isinstance(n, Span):
        return n
    changes = {}
    for fl in fields(n):
        v = getattr(n, fl.name)
        if isinstance(v, tuple):
            nv = tuple(f(x) if is_dataclass(x) and not isinstance(x, Span) else x for x in v)
            if any(a is not b for a, b in zip(nv, v)):
                changes[fl.name] = nv
        elif is_dataclass(v) and not isinstance(v, Span):
            nv = f(v)
            if nv is not v:
                changes[fl.name] = nv
    return replace(n, **changes) if changes else n


def _root(e) -> str | None:
    while e.__class__ in (ast.Field, ast.Index):
        e = e.obj
    return e.name if e.__class__ is ast.Name else None


def _text(e) -> str:
    if e.__class__ is ast.Name:
        return e.name
    if e.__class__ is ast.Field:
        return f"{_text(e.obj)}.{e.name}"
    return "rule"
