"""`lwasc serve`: from a source file or a signed artifact to services on HTTP.

A source file is compiled and signed once, in the parent process, into a temporary artifact;
every worker process then loads that artifact like any other: verify the signature, map the
native code, replay the ledgers, serve. So a worker never runs code whose signature it did not
check, and `--workers N` compiles once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lwas.artifact import ArtifactError

CONFIG_ENV = "LWAS_SERVE_CONFIG"


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
    source: str = ""  # what the user asked to serve, when the artifact was compiled from it
    # state snapshots (lwas.runtime.snapshot); None: LWAS_SNAPSHOT_EVERY_ENTRIES (10000),
    # LWAS_SNAPSHOT_EVERY_SECONDS (300), LWAS_SNAPSHOT_KEEP (3), LWAS_SNAPSHOT_DIR; 0 turns a trigger off
    snapshot_every_entries: int | None = None
    snapshot_every_seconds: float | None = None
    snapshot_keep: int | None = None
    snapshot_dir: str | None = None


class ServeError(Exception):
    """A reason not to serve (bad artifact, unreadable key, unreachable store)."""


def compile_to_artifact(source: str, key_path: str | None) -> str:
    """Compile and sign `source`; the artifact's path (a temporary file). Raises ServeError with
    the rendered diagnostics when the program does not compile."""
    from lwas.diagnostics import render_all
    from lwas.driver import compile_file
    from lwas.keys import signing_key

    key, note = signing_key(key_path)
    if note:
        print(note, file=sys.stderr)
    c = compile_file(source, key=key)
    if not c.ok or c.artifact is None:
        raise ServeError(render_all(c.diagnostics, c.sources))
    fd, path = tempfile.mkstemp(prefix="lwas-serve-", suffix=".lwasart")
    with os.fdopen(fd, "wb") as f:
        f.write(c.artifact)
    return path


def _load(cfg: ServeConfig):
    from lwas.keys import load_private, load_public, public_pem, signing_key, trusted_keys
    from lwas.runtime.loader import load_verified

    key, _ = signing_key(cfg.key)
    data = Path(cfg.artifact).read_bytes()
    trusted = [load_public(k) for k in cfg.pubkeys] + trusted_keys() + [key.public_key()]
    art, program = load_verified(data, trusted)
    return data, art, program, key, public_pem(key)


def build(cfg: ServeConfig):
    """(app, services, store) with the services started (ledgers replayed)."""
    from lwas.keys import KeyFileError
    from lwas.runtime.auth import load_credentials
    from lwas.runtime.host import Service
    from lwas.runtime.server import create_app
    from lwas.runtime.snapshot import Policy
    from lwas.runtime.store import open_store

    limiter = rate_limiter(os.environ.get("LWAS_RATE_LIMIT", ""))
    try:
        snapshots = Policy.from_env(every_entries=cfg.snapshot_every_entries, every_seconds=cfg.snapshot_every_seconds,
                                    keep=cfg.snapshot_keep, directory=cfg.snapshot_dir)
    except ValueError as e:
        raise ServeError(f"bad snapshot configuration: {e}") from None
    try:
        credentials = load_credentials()
    except ValueError as e:
        raise ServeError(f"bad credentials configuration: {e}") from None
    try:
        data, art, program, key, pub_pem = _load(cfg)
    except (OSError, ArtifactError, KeyFileError) as e:
        raise ServeError(f"cannot serve {cfg.artifact}: {e}") from None
    described = art.manifest.get("services") or []
    if not described:
        raise ServeError(f"{cfg.artifact} declares no service: nothing to serve")
    try:
        store = open_store(cfg.db)
    except Exception as e:  # noqa: BLE001 - sqlite3/psycopg errors, bad URLs
        raise ServeError(f"cannot open the ledger store {_safe_url(cfg.db)}: {e}") from None
    digest = hashlib.sha512(data).digest()
    try:  # binding `extern fn`s to connectors can refuse the artifact (lwas.runtime.externs)
        services = [Service(program, d, store, key, digest, snapshots=snapshots) for d in described]
    except ValueError as e:
        store.close()
        raise ServeError(f"cannot serve {cfg.artifact}: {e}") from None
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
        raise ServeError(f"cannot serve {cfg.artifact}: {e}") from None

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
    if r <= 0 or b < 1:
        raise ServeError(f"LWAS_RATE_LIMIT needs a positive rate and a burst of at least 1, got {spec!r}")
    return RateLimiter(rate_per_s=r, burst=b)


def _safe_url(url: str) -> str:
    """The store URL without a password (never log secrets)."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user, has_password = creds.split(":", 1)[0], ":" in creds
        return f"{scheme}://{user}{':***' if has_password else ''}@{host}"
    return url


def configure_logging(level: str = "info") -> None:
    from lwas.runtime.server import JsonLogFormatter

    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [h]
    root.setLevel(level.upper())


def app_from_env():
    """The uvicorn factory of each worker process (the config travels in the environment)."""
    cfg = ServeConfig(**json.loads(os.environ[CONFIG_ENV]))
    configure_logging(cfg.log_level)
    app, _, _ = build(cfg)
    return app


def serve(cfg: ServeConfig, announce=print) -> None:
    """Run uvicorn until interrupted. Credentials: `LWAS_API_KEYS` / `LWAS_AUTH_CONFIG`; with none,
    a development key is created and announced once (every worker inherits it)."""
    import uvicorn

    from lwas.runtime.auth import load_credentials, make_dev_key

    try:
        configured = load_credentials().configured
    except ValueError as e:
        raise ServeError(f"bad credentials configuration: {e}") from None
    if not configured:
        dev = make_dev_key()
        os.environ["LWAS_API_KEYS"] = f"{dev}:admin"
        announce(f"development API key (role admin; shown once): {dev}")
        announce(f"  KEY={dev}    # then: curl -H \"Authorization: Bearer $KEY\" ...")
    os.environ[CONFIG_ENV] = json.dumps(asdict(cfg))
    announce(f"serving {cfg.source or cfg.artifact} on http://{cfg.host}:{cfg.port}  (OpenAPI: /docs, ledger: "
             f"{_safe_url(cfg.db)}, workers: {cfg.workers})")
    configure_logging(cfg.log_level)
    common = dict(host=cfg.host, port=cfg.port, access_log=False, log_config=None, log_level=cfg.log_level,
                  timeout_graceful_shutdown=10)
    if cfg.workers == 1:
        app, _, _ = build(cfg)  # errors surface here, before the port is bound
        uvicorn.run(app, **common)
        return
    _load(cfg)  # check the artifact once in the parent: a bad one stops here, not in N workers
    uvicorn.run("lwas.runtime.serve:app_from_env", factory=True, workers=cfg.workers, **common)
