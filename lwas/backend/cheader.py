"""A C header for `lwasc build --emit shared`: every export of a NativeModule declared in the
calling convention of lwas/abi.py, so C (or anything with a C FFI) can call the .so.

The native symbols contain `$` (`lwas$fib`), which is no C identifier: each function gets a
C name (`lwas_fib`) bound to its symbol with a GNU asm label, which gcc and clang accept.
"""
from __future__ import annotations

import re

_SCALARS = {"int": "int64_t", "float": "double", "truth": "double", "bool": "int8_t", "time": "int64_t"}


def _ident(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if s and not s[0].isdigit() else "_" + s


class _Types:
    """C spellings of TypeDescs; collects the typedefs they need, dependencies first."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.defs: list[str] = []
        self.seen: set[str] = set()

    def _define(self, name: str, body: str) -> str:
        if name not in self.seen:
            self.seen.add(name)
            self.defs.append(body)
        return name

    def c(self, t) -> str:
        p = self.prefix
        if isinstance(t, str):
            if t in _SCALARS:
                return _SCALARS[t]
            if t == "text":
                return self._define(f"{p}text", f"typedef struct {{ const char *ptr; int64_t len; }} {p}text;")
            if t == "unit":
                return "void"
            raise ValueError(f"unknown type {t!r}")
        if "money" in t:
            return self._define(f"{p}money", f"/* minor units; currency = its 3 ASCII letters packed, USD = 0x555344 */\n"
                                             f"typedef struct {{ int64_t minor; int32_t currency; }} {p}money;")
        if "array" in t:
            elem = self.c(t["array"])
            name = f"{p}array_{_ident(elem.removeprefix(p))}"
            return self._define(name, f"typedef struct {{ const {elem} *ptr; int64_t len; }} {name};")
        if "enum" in t:
            name = f"{p}{_ident(t['enum'])}"
            consts = ", ".join(f"{name}_{_ident(v)} = {i}" for i, v in enumerate(t.get("variants", [])))
            body = f"typedef int32_t {name};" + (f"\nenum {{ {consts} }};" if consts else "")
            return self._define(name, body)
        if "record" in t:
            name = f"{p}{_ident(t['record'])}"
            if name not in self.seen:
                fields = [f"  {self.c(ft)} {_ident(fn)};" for fn, ft in t.get("fields", [])]
                self._define(name, "\n".join([f"typedef struct {name} {{", *fields, f"}} {name};"]))
            return name
        raise ValueError(f"unknown type {t!r}")

    def params(self, name: str, t) -> list[str]:
        """A parameter in its native form: money, text and arrays spread over two, records by pointer."""
        n = _ident(name)
        if isinstance(t, dict) and "money" in t:
            return [f"int64_t {n}_minor", f"int32_t {n}_currency"]
        if t == "text":
            return [f"const char *{n}_ptr", f"int64_t {n}_len"]
        if isinstance(t, dict) and "array" in t:
            return [f"const {self.c(t['array'])} *{n}_ptr", f"int64_t {n}_len"]
        if isinstance(t, dict) and "record" in t:
            return [f"const {self.c(t)} *{n}"]
        return [f"{self.c(t)} {n}"]


def header(described: dict, guard: str = "LWAS_PROGRAM_H", prefix: str = "lwas_") -> str:
    """The header text for NativeModule.describe() data."""
    types = _Types(prefix)
    decls: list[str] = []
    used: set[str] = set()
    for e in described.get("exports", []):
        base = f"{prefix}test_{_ident(e['name'])}" if e["kind"] == "test" else f"{prefix}{_ident(e['name'])}"
        cname, k = base, 2
        while cname in used:
            cname, k = f"{base}_{k}", k + 1
        used.add(cname)
        result = types.c(e["result"])
        out = "void *out" if result == "void" else f"{result} *out"
        params = [out] + [x for p in e["params"] for x in types.params(p["name"], p["type"])]
        where = f" ({e['file']}:{e['line']})" if e.get("file") else ""
        decls.append(f"/* {e['kind']} {e['name']}{where} */\n"
                     f"int32_t {cname}({', '.join(params)}) __asm__(\"{e['symbol']}\");")
    axioms = described.get("axioms", [])
    if axioms:
        from lwas.abi import AXIOM_TABLE

        names = "\n".join(f"#define {prefix}AXIOM_{_ident(a['name']).upper()} {i}  /* effective {a['effective']!r} */"
                          for i, a in enumerate(axioms))
        decls.append(f"/* effective truths of the axioms, indexed by the constants below */\n"
                     f"extern const double {prefix}axioms[{len(axioms)}] __asm__(\"{AXIOM_TABLE}\");\n{names}")
    from lwas.abi import BUDGET_GLOBAL

    decls.append("/* The wall-clock budget of one call of any function above, in nanoseconds of\n"
                 " * CLOCK_MONOTONIC; 0 (the initial value) = no limit. A call that outlives it returns\n"
                 " * the status of a `timeout` error site. Set it before calling, not during calls. */\n"
                 f"extern int64_t {prefix}budget_ns __asm__(\"{BUDGET_GLOBAL}\");")
    sites = described.get("error_sites", [])
    site_lines = "\n".join(f" *   {i + 1}: {s['kind']}: {s['message'].replace('*/', '* /')} ({s['file']}:{s['line']}:{s['col']})"
                           for i, s in enumerate(sites))
    return "\n".join([
        f"/* Generated by lwasc for {described.get('triple', '?')}; do not edit. */",
        f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
        "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
        "/* Every function returns a status: 0 = success, the result written to *out;",
        " * k >= 1 = the runtime fault at error site k happened and *out is undefined.",
        f" * Error sites:{'' if sites else ' none'}",
        *([site_lines] if sites else []),
        " */", "",
        *(d + "\n" for d in types.defs),
        *(d + "\n" for d in decls),
        "#ifdef __cplusplus", "}", "#endif", f"#endif /* {guard} */", "",
    ])
