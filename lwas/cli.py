"""`lwasc`: the command-line driver. Heavy modules are imported inside commands so that
`lwasc --version` starts fast.

Exit codes: 0 ok (warnings allowed), 1 errors in the input, 2 usage, 101 internal error.
"""
from __future__ import annotations

import argparse
import sys

from . import __version__

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 101


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2, as argparse does, with our wording
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lwasc", description="The LwaS compiler.")
    p.add_argument("--version", action="version", version=f"lwasc {__version__}")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("check", help="parse and check programs, report diagnostics")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--format", choices=["human", "json"], default="human")
    c.add_argument("--timings", action="store_true", help="print the time of each compiler stage")
    c.add_argument("--color", choices=["auto", "always", "never"], default="auto")

    e = sub.add_parser("explain", help="print the long explanation of a diagnostic code")
    e.add_argument("code")

    g = sub.add_parser("graph", help="print the axiom dependency graph as Graphviz DOT")
    g.add_argument("file")
    g.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if args.debug:
            raise
        print(f"error: internal compiler error: {type(exc).__name__}: {exc}\n"
              "note: this is a bug in lwasc, not in your program; please report it with the input file\n"
              "note: run with --debug for the traceback", file=sys.stderr)
        return EXIT_INTERNAL


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: cannot read `{path}`: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
        return None


def _colour(args) -> bool:
    from .diagnostics import use_colour

    return {"always": True, "never": False}.get(args.color, use_colour(sys.stderr))


def cmd_check(args) -> int:
    from .diagnostics import render_all, to_json_lines
    from .driver import check_source, format_timings

    failed = False
    for path in args.files:
        text = _read(path)
        if text is None:
            failed = True
            continue
        c = check_source(text, path)
        diags = c.diagnostics
        if args.format == "json":
            out = to_json_lines(diags, c.sources)
            if out:
                print(out)
        elif diags:
            print(render_all(diags, c.sources, _colour(args)), file=sys.stderr)
        if args.timings:
            print(format_timings(c, text.count("\n") + 1), file=sys.stderr)
        failed |= not c.ok
    return EXIT_ERRORS if failed else EXIT_OK


def cmd_explain(args) -> int:
    from .codes import CODES, explain

    text = explain(args.code)
    if text is None:
        print(f"error: no such diagnostic code `{args.code}`; known codes: {', '.join(CODES)}", file=sys.stderr)
        return EXIT_USAGE
    print(text, end="")
    return EXIT_OK


def cmd_graph(args) -> int:
    from .diagnostics import render_all
    from .driver import check_source
    from .graph import to_dot

    text = _read(args.file)
    if text is None:
        return EXIT_ERRORS
    c = check_source(text, args.file)
    if c.diagnostics:
        print(render_all(c.diagnostics, c.sources, _colour(args)), file=sys.stderr)
    if c.truth is None:  # the program did not get as far as the truth checker
        return EXIT_ERRORS
    print(to_dot(c.program, c.truth))  # violations are drawn in red
    return EXIT_OK if c.ok else EXIT_ERRORS


_COMMANDS = {"check": cmd_check, "explain": cmd_explain, "graph": cmd_graph}


if __name__ == "__main__":
    sys.exit(main())
