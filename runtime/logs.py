"""Where a server's log records go: a console for people, JSON lines for machines.

Two destinations, chosen independently:

- stderr, in one of two formats (`--log-format`, else `LWAS_LOG_FORMAT`, else `auto`):
  `json`     one JSON object per record at `--log-level`, access log included (what log shippers,
             journald and `kubectl logs` consumers expect; the default when stderr is not a
             terminal, so systemd, Kubernetes and compose keep getting JSON);
  `console`  plain lines, warnings and errors only (`12:03:04 warning: message`): a person at a
             terminal reads every line, so per-request lines do not belong there;
  `auto`     `console` when stderr is a terminal, `json` otherwise.
- a file (`--log-file`, else `LWAS_LOG_FILE`): every record at `--log-level` as JSON lines,
  whatever stderr shows. `make run` writes one per service under var/log/. The file is opened in
  append mode and reopened when it is moved (WatchedFileHandler), so logrotate works.

Why records are not formatted at all when nobody reads them: with the console alone the root
level is WARNING, so the access log (`log.isEnabledFor(INFO)`) costs nothing per request.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path

FORMATS = ("auto", "console", "json")
FORMAT_ENV = "LWAS_LOG_FORMAT"
FILE_ENV = "LWAS_LOG_FILE"


class LogSetupError(Exception):
    """A log setting that cannot be honoured (unknown format, unwritable file)."""


def resolve_format(flag: str | None, env=os.environ, stream=None) -> str:
    """`console` or `json`: the flag, else $LWAS_LOG_FORMAT, else auto (a terminal gets the console)."""
    value = (flag or env.get(FORMAT_ENV, "") or "auto").strip().lower()
    if value not in FORMATS:
        raise LogSetupError(f"{FORMAT_ENV} must be one of {', '.join(FORMATS)}, got {value!r}")
    if value != "auto":
        return value
    stream = sys.stderr if stream is None else stream
    try:
        return "console" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # no stream, or a closed one
        return "json"


def resolve_file(flag: str | None, env=os.environ) -> str | None:
    """The JSON log file: the flag, else $LWAS_LOG_FILE, else none."""
    return flag or env.get(FILE_ENV) or None


class ConsoleFormatter(logging.Formatter):
    """`HH:MM:SS level: message`, one line per record; an exception adds `: Type: text`, not a
    traceback (the JSON file, when there is one, keeps the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        text = f"{stamp} {record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f": {type(exc).__name__}: {exc}" if str(exc) else f": {type(exc).__name__}"
        return text


def json_formatter() -> logging.Formatter:
    """runtime/server.py's JsonLogFormatter, with the traceback of `log.exception` kept as `exc`."""
    from lwas.runtime.server import JsonLogFormatter

    class WithTraceback(JsonLogFormatter):
        def format(self, record: logging.LogRecord) -> str:
            line = super().format(record)
            if not record.exc_info:
                return line
            import json

            out = json.loads(line)
            out["exc"] = self.formatException(record.exc_info)
            return json.dumps(out)

    return WithTraceback()


def open_file(path: str) -> logging.Handler:
    """A JSON-lines handler appending to `path` (its directory is created)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        h = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    except OSError as e:
        raise LogSetupError(f"cannot open the log file {path}: {e.strerror or e}") from None
    h.setFormatter(json_formatter())
    return h


def configure(level: str = "info", fmt: str = "json", file: str | None = None) -> None:
    """Replace the root logger's handlers: stderr in `fmt` (resolved: console or json), and the
    JSON file when given. Raises LogSetupError before touching anything if the file cannot open."""
    wanted = logging.getLevelName(level.upper())
    file_handler = open_file(file) if file else None
    stderr = logging.StreamHandler(sys.stderr)
    if fmt == "console":
        stderr.setFormatter(ConsoleFormatter())
        stderr.setLevel(max(wanted, logging.WARNING))
    else:
        stderr.setFormatter(json_formatter())
    json_somewhere = fmt != "console" or file_handler is not None
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = [stderr] + ([file_handler] if file_handler else [])
    root.setLevel(wanted if json_somewhere else max(wanted, logging.WARNING))
