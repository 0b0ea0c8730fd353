"""`lwasc serve`: from a source file or a signed artifact to services on HTTP.

A source file is compiled and signed once, in the parent process, into a temporary artifact;
every worker process then loads that artifact like any other: verify the signature, map the
native code, replay the ledgers, serve. So a worker never runs code whose signature it did not
check, and `--workers N` compiles once.

The order of a start is the contract, so that a refusal is one clear error and nothing else:
1. everything that can be checked without the network: the settings (LWAS_RATE_LIMIT, the
   request limits of lwas.runtime.limits, LWAS_REPORT_EVERY, the credentials, the snapshot
   policy, the log file), the signing key, the artifact's signature and
   that it declares a service (a source file without one is refused before it is compiled);
2. the listening sockets are bound here, with uvicorn's own options (SO_REUSEADDR, one socket per
   address of --host), and handed to uvicorn: a port in use is `error: port N on HOST is in use`
   with a `help:` line, exit 1, never a traceback, and no race between a check and uvicorn's bind;
3. only then a development API key is created (when none is configured), the ledgers are
   replayed, and the key and the `serving ...` line are printed.
Messages name the file the user gave, never the temporary artifact.

Logs: lwas.runtime.logs (stderr as a console for people or JSON lines for machines, and a JSON file).
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import socket
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lwas.backend.artifact import ArtifactError

CONFIG_ENV = "LWAS_SERVE_CONFIG"
# uvicorn's httptools protocol plus a header size limit and read timeouts (lwas.runtime.limits)
HTTP_PROTOCOL = "lwas.runtime.limits:GuardedHttpToolsProtocol"


@dataclass
class ServeConfig:
    artifact: str  # path of the signed artifact to serve
    db: str = "lwas-ledger.db"
    key: str | None = None  # private key (PEM path) for checkpoints; None: the dev key
    pubkeys: list[str] = field(default_factory=list)  # extra trusted keys for the artifact
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    log_format: str = "json"  # what stderr shows: "json" lines or the "console" (lwas.runtime.logs)
    log_file: str | None = None  # every record as JSON lines, whatever stderr shows
    source: str = ""  # what the user asked to serve, when the artifact was compiled from it
    # state snapshots (lwas.runtime.snapshot); None: LWAS_SNAPSHOT_EVERY_ENTRIES (10000),
    # LWAS_SNAPSHOT_EVERY_SECONDS (300), LWAS_SNAPSHOT_KEEP (3), LWAS_SNAPSHOT_DIR; 0 turns a trigger off
    snapshot_every_entries: int | None = None
    snapshot_every_seconds: float | None = None
    snapshot_keep: int | None = None
    snapshot_dir: str | None = None


class ServeError(Exception):
    """A reason not to serve (bad artifact, unreadable key, unreachable store, port in use); the
    text follows `error: ` and may go on with `  = note: ` / `  = help: ` lines."""

    def __init__(self, message: str, *, note: str = "", help: str = ""):
        super().__init__(message + (f"\n  = note: {note}" if note else "") + (f"\n  = help: {help}" if help else ""))


def no_service(name: str) -> ServeError:
    return ServeError(f"`{name}` declares no service: there is nothing to serve",
                      help=f"a `service NAME {{ ... }}` block gives a program HTTP routes (docs/services.md); "
                           f"to run its `main` instead: `lwasc run {name}`")


def compile_to_artifact(source: str, key_path: str | None) -> str:
    """Compile and sign `source`; the artifact's path (a temporary file). Raises ServeError with
    the rendered diagnostics when the program does not compile, and before the back end runs when
    it declares no service."""
    from lwas.syntax.diagnostics import render_all
    from lwas.driver import FRONT_END, Compilation, run
    from lwas.backend.keys import KeyFileError, signing_key
    from lwas.syntax.source import SourceFile

    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ServeError(f"cannot read `{source}`: {getattr(e, 'strerror', None) or e}") from None
    try:
        key, note = signing_key(key_path)
    except KeyFileError as e:
        raise ServeError(str(e)) from None
    if note:
        print(note, file=sys.stderr)
    c = run(Compilation(SourceFile(source, text), key=key), until=FRONT_END)
    if c.ok and not c.services:
        raise no_service(source)
    if c.ok:
        run(c, start="lower")
    if not c.ok or c.artifact is None:
        raise ServeError(render_all(c.diagnostics, c.sources))
    fd, path = tempfile.mkstemp(prefix="lwas-serve-", suffix=".lwasart")
    with os.fdopen(fd, "wb") as f:
        f.write(c.artifact)
    return path


def _name(cfg: ServeConfig) -> str:
    """What the user asked to serve (never the temporary artifact of a source file)."""
    return cfg.source or cfg.artifact


def _trusted(cfg: ServeConfig, key) -> list:
    from lwas.backend.keys import load_public, trusted_keys

    return [load_public(k) for k in cfg.pubkeys] + trusted_keys() + [key.public_key()]


def _load(cfg: ServeConfig):
    from lwas.backend.keys import public_pem, signing_key
    from lwas.runtime.loader import load_verified

    key, _ = signing_key(cfg.key)
    data = Path(cfg.artifact).read_bytes()
    art, program = load_verified(data, _trusted(cfg, key))
    return data, art, program, key, public_pem(key)


def _settings(cfg: ServeConfig):
    """(rate limiter, snapshot policy, credentials) from the environment, or ServeError. Every
    numeric setting the start reads is checked here (a NaN or a word is refused, never silently
    turned into "no limit"): LWAS_RATE_LIMIT, the request limits (lwas.runtime.limits),
    LWAS_CALL_BUDGET_MS (lwas.runtime.native), LWAS_REPORT_EVERY and the snapshot policy."""
    from lwas.runtime import limits
    from lwas.runtime.auth import load_credentials
    from lwas.runtime.native import budget_ms_from_env
    from lwas.runtime.snapshot import Policy

    limiter = rate_limiter(os.environ.get("LWAS_RATE_LIMIT", ""))
    try:
        limits.configure(limits.Limits.from_env())
    except ValueError as e:
        raise ServeError(f"bad request limits: {e}") from None
    try:
        budget_ms_from_env()  # LWAS_CALL_BUDGET_MS, which loading the program applies
    except ValueError as e:
        raise ServeError(f"bad call budget: {e}") from None
    every = os.environ.get("LWAS_REPORT_EVERY", "").strip()
    if every and not _positive_number(every):
        raise ServeError(f"LWAS_REPORT_EVERY must be a number of seconds above 0, got {every!r}")
    try:
        snapshots = Policy.from_env(every_entries=cfg.snapshot_every_entries, every_seconds=cfg.snapshot_every_seconds,
                                    keep=cfg.snapshot_keep, directory=cfg.snapshot_dir)
    except ValueError as e:
        raise ServeError(f"bad snapshot configuration: {e}") from None
    try:
        credentials = load_credentials()
    except ValueError as e:
        raise ServeError(f"bad credentials configuration: {e}") from None
    return limiter, snapshots, credentials


def preflight(cfg: ServeConfig) -> None:
    """Step 1 of a start (the module docstring): the settings, the signing key, the artifact's
    signature and services, the log file. Maps no native code, binds nothing; raises ServeError."""
    from lwas.backend.keys import KeyFileError, signing_key
    from lwas.runtime.loader import check
    from lwas.runtime.logs import LogSetupError, open_file

    _settings(cfg)
    try:
        key, _ = signing_key(cfg.key)
        art = check(Path(cfg.artifact).read_bytes(), _trusted(cfg, key))
    except (OSError, ArtifactError, KeyFileError) as e:
        raise ServeError(f"cannot serve {_name(cfg)}: {getattr(e, 'strerror', None) or e}") from None
    if not art.manifest.get("services"):
        raise no_service(_name(cfg))
    if cfg.log_file:
        try:
            open_file(cfg.log_file).close()
        except LogSetupError as e:
            raise ServeError(str(e)) from None


def build(cfg: ServeConfig):
    """(app, services, store) with the services started (ledgers replayed)."""
    from lwas.backend.keys import KeyFileError
    from lwas.runtime.host import Service
    from lwas.runtime.server import create_app
    from lwas.runtime.store import open_store

    limiter, snapshots, credentials = _settings(cfg)
    try:
        data, art, program, key, pub_pem = _load(cfg)
    except (OSError, ArtifactError, KeyFileError) as e:
        raise ServeError(f"cannot serve {_name(cfg)}: {e}") from None
    described = art.manifest.get("services") or []
    if not described:
        raise no_service(_name(cfg))
    try:
        store = open_store(cfg.db)
    except Exception as e:  # noqa: BLE001 - sqlite3/psycopg errors, bad URLs
        raise ServeError(f"cannot open the ledger store {_safe_url(cfg.db)}: {e}") from None
    digest = hashlib.sha512(data).digest()
    try:  # binding `extern fn`s to connectors can refuse the artifact (lwas.runtime.externs)
        services = [Service(program, d, store, key, digest, snapshots=snapshots) for d in described]
    except ValueError as e:
        store.close()
        raise ServeError(f"cannot serve {_name(cfg)}: {e}") from None
    started = []
    try:
        for s in services:
            s.start()
            started.append(s)
    except Exception as e:
        for s in started:
            s.stop()
        store.close()
        raise ServeError(f"cannot start service: {e}") from None
    from lwas.runtime.report import reporter_from_env

    reporter = reporter_from_env("+".join(s.name for s in services))
    try:
        app = create_app(services, credentials=credentials, public_key_pem=pub_pem, ready=store.ping,
                         limiter=limiter, title=f"LwaS: {art.manifest.get('module', '')}", reporter=reporter)
    except ValueError as e:  # two services claim a route, a webhook body Stripe cannot fill, ...
        for s in services:
            s.stop()
        store.close()
        raise ServeError(f"cannot serve {_name(cfg)}: {e}") from None

    def shutdown():
        if reporter is not None:
            reporter.stop()  # sends the last window
        for s in services:
            s.stop()
        store.close()

    if reporter is not None:
        app.router.add_event_handler("startup", reporter.start)
    app.router.add_event_handler("shutdown", shutdown)
    return app, services, store



def rate_limiter(spec: str):
    """`LWAS_RATE_LIMIT="RATE[:BURST]"`: requests per second per credential (default 2000:4000)."""
    from lwas.runtime.auth import RateLimiter

    rate, _, burst = (spec or "2000:4000").partition(":")
    try:
        r = float(rate)
        b = float(burst) if burst else 2 * r
    except ValueError:
        raise ServeError(f"LWAS_RATE_LIMIT must be RATE[:BURST] (numbers), got {spec!r}") from None
    if not (math.isfinite(r) and math.isfinite(b)) or r <= 0 or b < 1:  # NaN compares false: refuse it
        raise ServeError(f"LWAS_RATE_LIMIT needs a finite positive rate and a burst of at least 1, got {spec!r}")
    return RateLimiter(rate_per_s=r, burst=b)


def _positive_number(text: str) -> bool:
    try:
        v = float(text)
    except ValueError:
        return False
    return math.isfinite(v) and v > 0


def _safe_url(url: str) -> str:
    """The store URL without a password (never log secrets)."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user, has_password = creds.split(":", 1)[0], ":" in creds
        return f"{scheme}://{user}{':***' if has_password else ''}@{host}"
    return url



# ------------------------------------------------------------------------------ listening sockets

def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind_all(host: str, port: int) -> list[socket.socket]:
    """Bound, not yet listening, sockets for host:port, as uvicorn's own bind makes them (asyncio's
    `create_server(host=, port=)`: one per address the host resolves to, SO_REUSEADDR, IPv6 sockets
    IPv6-only). Raises OSError (socket.gaierror for an unknown host)."""
    infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    seen, out, chosen = set(), [], port
    try:
        for family, kind, proto, _, addr in infos:
            addr = (addr[0], chosen, *addr[2:])  # port 0: the first socket's port for every address
            if (family, addr) in seen:
                continue
            seen.add((family, addr))
            s = socket.socket(family, kind, proto)
            out.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind(addr)
            s.set_inheritable(True)  # `--workers N`: every worker serves on these
            chosen = s.getsockname()[1]
    except BaseException:
        for s in out:
            s.close()
        raise
    return out


def port_is_free(host: str, port: int) -> bool:
    try:
        for s in _bind_all(host, port):
            s.close()
        return True
    except OSError:
        return False


def _free_port_near(host: str, port: int, tries: int = 20) -> int | None:
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if port_is_free(host, candidate):
            return candidate
    return None


def bind_error(host: str, port: int, e: OSError) -> ServeError:
    """A rustc-like refusal for a failed bind: what, the system's reason, what to do."""
    where = _where(host, port)
    reason = f"bind({where}): {(e.strerror or str(e)).lower()}"
    if isinstance(e, socket.gaierror):
        return ServeError(f"cannot listen on `{host}`: no such host", note=f"{e.strerror or e}",
                          help="--host takes an address or name of this machine: 127.0.0.1 (only this "
                               "machine) or 0.0.0.0 (every interface)")
    if e.errno == errno.EADDRINUSE:
        free = _free_port_near(host, port)
        hint = f"`--port {free}` is free" if free else "choose another with --port N"
        return ServeError(f"port {port} on {host} is in use", note=reason,
                          help=f"stop the process that listens there, or serve on another port: {hint}")
    if e.errno == errno.EACCES:
        return ServeError(f"no permission to listen on port {port} on {host}", note=reason,
                          help="ports below 1024 need privileges: use a higher one, e.g. --port 8000")
    if e.errno == errno.EADDRNOTAVAIL:
        return ServeError(f"{host} is not an address of this machine", note=reason,
                          help="--host 127.0.0.1 listens on this machine only, --host 0.0.0.0 on every interface")
    return ServeError(f"cannot listen on {where}", note=reason)


def listen(host: str, port: int) -> list[socket.socket]:
    """Step 2 of a start: the bound sockets uvicorn will serve on, or a ServeError."""
    try:
        return _bind_all(host, port)
    except OSError as e:
        raise bind_error(host, port, e) from None


# ------------------------------------------------------------------------------ running

def configure_logging(level: str = "info", fmt: str = "json", file: str | None = None) -> None:
    """Root handlers per lwas.runtime.logs: stderr as JSON lines or the console, plus the JSON file."""
    from lwas.runtime.logs import LogSetupError, configure

    try:
        configure(level, fmt, file)
    except LogSetupError as e:
        raise ServeError(str(e)) from None


def app_from_env():
    """The uvicorn factory of each worker process (the config travels in the environment)."""
    cfg = ServeConfig(**json.loads(os.environ[CONFIG_ENV]))
    configure_logging(cfg.log_level, cfg.log_format, cfg.log_file)
    app, _, _ = build(cfg)
    return app


def _dev_key_if_none() -> str | None:
    """A development API key put in LWAS_API_KEYS when no credential is configured (every worker
    inherits it); None when credentials are configured."""
    from lwas.runtime.auth import load_credentials, make_dev_key

    try:
        configured = load_credentials().configured
    except ValueError as e:
        raise ServeError(f"bad credentials configuration: {e}") from None
    if configured:
        return None
    dev = make_dev_key()
    os.environ["LWAS_API_KEYS"] = f"{dev}:admin"
    return dev


def _start_lines(cfg: ServeConfig, port: int, dev: str | None) -> list[str]:
    url = f"http://{_where(cfg.host, port)}"
    lines = []
    if dev:
        lines += [f"development API key (role admin; shown once): {dev}",
                  f"  KEY={dev}    # then: curl -H \"Authorization: Bearer $KEY\" {url}/..."]
    lines.append(f"serving {_name(cfg)} on {url}  (OpenAPI: {url}/docs, ledger: {_safe_url(cfg.db)}, "
                 f"workers: {cfg.workers})")
    if cfg.log_format == "console":
        lines.append(f"logs: warnings and errors here; every record as JSON in {cfg.log_file}" if cfg.log_file else
                     "logs: warnings and errors here (--log-file FILE keeps every record, access log included, "
                     "as JSON; --log-format json prints them)")
    return lines


def serve(cfg: ServeConfig, announce=print, quiet: bool = False) -> None:
    """Run uvicorn until interrupted, in the order the module docstring gives. Credentials:
    `LWAS_API_KEYS` / `LWAS_AUTH_CONFIG`; with none, a development key is created and announced
    (even when `quiet`, which leaves out the other start lines)."""
    import uvicorn

    from lwas.runtime.limits import current as current_limits

    preflight(cfg)
    sockets = listen(cfg.host, cfg.port)
    try:
        port = sockets[0].getsockname()[1]
        dev = _dev_key_if_none()
        os.environ[CONFIG_ENV] = json.dumps(asdict(cfg))
        configure_logging(cfg.log_level, cfg.log_format, cfg.log_file)
        logging.getLogger("lwas.serve").info("listening on http://%s (%s)", _where(cfg.host, port), _name(cfg))
        common = dict(host=cfg.host, port=port, access_log=False, log_config=None, log_level=cfg.log_level,
                      timeout_graceful_shutdown=10, http=HTTP_PROTOCOL,
                      limit_concurrency=current_limits().max_connections)
        if cfg.workers == 1:
            app, _, _ = build(cfg)  # refusals surface here, before anything is announced
            _announce(announce, _start_lines(cfg, port, dev), dev, quiet)
            _run_one(uvicorn.Config(app, **common), sockets)
        else:
            _announce(announce, _start_lines(cfg, port, dev), dev, quiet)
            _run_workers(uvicorn.Config("lwas.runtime.serve:app_from_env", factory=True, workers=cfg.workers,
                                        **common), sockets)
    finally:
        for s in sockets:
            s.close()


def _announce(announce, lines: list[str], dev: str | None, quiet: bool) -> None:
    """Every start line; when `quiet`, only a created development key (two lines)."""
    for line in (lines[:2] if dev else []) if quiet else lines:
        announce(line)


def _run_one(config, sockets: list[socket.socket]) -> None:
    """uvicorn.run's single-process path, on our sockets."""
    import uvicorn

    server = uvicorn.Server(config)
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    if not server.started:  # the lifespan startup failed, or a signal came first (uvicorn.run does the same)
        sys.exit(3)


def _run_workers(config, sockets: list[socket.socket]) -> None:
    """uvicorn.run's `--workers N` path (a supervisor and N spawned workers), on our sockets."""
    import inspect

    from uvicorn.supervisors import Multiprocess

    extra = {}
    if "target" in inspect.signature(Multiprocess).parameters:  # older releases take the target
        import uvicorn

        extra["target"] = uvicorn.Server(config).run
    try:
        Multiprocess(config, sockets=sockets, **extra).run()
    except KeyboardInterrupt:
        pass
