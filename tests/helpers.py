"""Helpers shared by the test modules (`from helpers import ...`; pytest puts tests/ on sys.path).

- ROOT and BANK: the repository and its example service (tests read nothing outside ROOT).
- compile_ok, compile_signed, compile_services, program_of: LwaS source compiled, asserting it
  has no errors.
- Loaded, compile_loaded: a signed artifact verified and loaded (program, service description,
  digest). Built: the same with its source, artifact and key pair written to a directory (for
  `lwasc serve`). Running: one started Service on its own store.
- Threaded: uvicorn serving an ASGI app on 127.0.0.1 in a thread. Server: signed services with
  their app on it, in this process (test keys WRITER and READER, headers AUTH and READ).
- wait_until, deref: polling with a deadline; following `$ref`s in an OpenAPI document.

tests/serving.py runs `lwasc serve` as a subprocess instead; tests/conftest.py has the fixtures.
"""
from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import lwas
from lwas.backend import keys
from lwas.driver import compile_source
from lwas.runtime.snapshot import Policy

# The runtime's host, loader and server, uvicorn and httpx are imported where they are used, so
# that the modules that only want ROOT (or the compile helpers) stay quick to import.
if TYPE_CHECKING:
    from lwas.runtime.host import Service
    from lwas.runtime.limits import Limits

ROOT = Path(__file__).resolve().parent.parent
BANK = ROOT / "examples" / "bank.lwas"

WRITER, READER = "writer-key-0123456789", "reader-key-0123456789"
HS = "s" * 40  # the HS256 secret of Server's credentials
AUTH = {"Authorization": f"Bearer {WRITER}"}
READ = {"Authorization": f"Bearer {READER}"}
OFF = Policy(every_entries=0, every_seconds=0)  # no snapshots written by themselves


# ------------------------------------------------------------------------------------ compiling

def compile_ok(source: str | None = None, path: str | Path = "<string>", key=None, **kw):
    """The Compilation of `source` (of the file at `path` when `source` is None), asserted error-free."""
    text = Path(path).read_text(encoding="utf-8") if source is None else source
    c = compile_source(text, str(path), key, **kw)
    assert c.ok, c.diagnostics
    return c


def compile_signed(source: str | None = None, path: str | Path = "<string>", **kw) -> tuple[bytes, object]:
    """(artifact, key): `source` (or the file at `path`) compiled and signed with a fresh key."""
    key = keys.generate()
    return compile_ok(source, path, key, **kw).artifact, key


def compile_services(*names: str) -> tuple[dict[str, bytes], object]:
    """({name: artifact}, key): services/NAME.lwas each compiled, all signed with one fresh key."""
    key = keys.generate()
    return {name: compile_ok(path=ROOT / "services" / f"{name}.lwas", key=key).artifact for name in names}, key


def program_of(source: str, filename: str, key=None, **kw):
    """The public API's compile-then-load: a native program with its functions under `.fn`."""
    key = key or keys.generate()
    return lwas.load(lwas.compile(source, filename=filename, key=key, **kw), trusted=[keys.public_pem(key)])


class Loaded:
    """A signed artifact verified and loaded: the program, the (first) service's description, the digest."""

    def __init__(self, artifact: bytes, key, compilation=None):
        from lwas.runtime.loader import load_verified

        self.artifact, self.key, self.compilation = artifact, key, compilation
        self.art, self.program = load_verified(artifact, [key.public_key()])
        self.services = self.art.manifest["services"]
        self.desc = self.services[0] if self.services else None
        self.digest = hashlib.sha512(artifact).digest()

    def service(self, store, desc: dict | None = None, **kw) -> Service:
        """A (not yet started) Service of this program on `store`."""
        from lwas.runtime.host import Service

        return Service(self.program, desc or self.desc, store, self.key, self.digest, **kw)


def compile_loaded(source: str, path: str | Path = "<string>", key=None) -> Loaded:
    """`source` compiled, signed (with a fresh key unless `key` is given) and loaded."""
    key = key or keys.generate()
    c = compile_ok(source, path, key)
    return Loaded(c.artifact, key, c)


class Built(Loaded):
    """`source` written to HOME/NAME.lwas, compiled and signed with a fresh key, the artifact
    written to HOME/NAME.lwasart and the key pair to HOME/signing.pem(.pub), then loaded."""

    def __init__(self, home: Path, name: str, source: str):
        self.home = home
        key = keys.generate()
        src = home / f"{name}.lwas"
        src.write_text(source)
        artifact = compile_ok(path=src, key=key).artifact
        self.art_path = home / f"{name}.lwasart"
        self.art_path.write_bytes(artifact)
        self.key_path = home / "signing.pem"
        self.key_path.write_bytes(keys.private_pem(key))
        self.pub_path = home / "signing.pem.pub"
        self.pub_path.write_bytes(keys.public_pem(key))
        super().__init__(artifact, key)
        (self.desc,) = self.services

    def serve(self, db, home: Path, **kw):
        """`lwasc serve` of the artifact (tests/serving.py)."""
        from serving import served

        return served(self.art_path, db=str(db), key=self.key_path, pubkey=self.pub_path, home=home, **kw)


class Running:
    """A started Service of `b` on its own store (`store`, else a new one at `db`), snapshots as
    `policy` says; close() (or leaving a `with`) stops both."""

    def __init__(self, b: Loaded, db, policy: Policy = OFF, store=None, key=None, digest: bytes | None = None):
        from lwas.runtime.host import Service
        from lwas.runtime.store import open_store

        self.b = b
        self.store = store or open_store(str(db))
        self.svc = Service(b.program, b.desc, self.store, key or b.key, digest or b.digest, snapshots=policy)
        try:
            self.svc.start()
        except BaseException:
            self.store.close()
            raise

    def close(self) -> None:
        self.svc.stop()
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_sql(db, *statements: tuple) -> None:
    """Raw SQL on an SQLite ledger file, each (statement, parameters) in autocommit: how tests
    damage a store behind the runtime's back."""
    import sqlite3

    c = sqlite3.connect(db, isolation_level=None)
    try:
        for stmt, *args in statements:
            c.execute(stmt, *args)
    finally:
        c.close()


# ------------------------------------------------------------------------------------ serving

def wait_until(pred, timeout: float, what: str, step: float = 0.05):
    """The first true value of `pred()`, polled every `step` s; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(step)


class Threaded:
    """uvicorn serving `app` on 127.0.0.1 (on a free port unless `port` is given) in a daemon
    thread, started and ready when constructed; close() stops it."""

    def __init__(self, app, port: int | None = None, **config):
        import uvicorn

        from serving import HOST, free_port

        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=self.port, log_level="warning",
                                                    access_log=False, **config))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, 20, "the server to start", step=0.01)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Server:
    """Services + app + uvicorn on a free loopback port, in a thread; close() (or leaving a
    `with`) stops them. With `limits`, the app and the HTTP protocol (lwas.runtime.limits')
    enforce them; `env` is set while the app is made."""

    def __init__(self, artifact: bytes, key, db: str, limiter=None, read_auth=False, port: int | None = None,
                 reporter=None, limits: Limits | None = None, env: dict[str, str] | None = None):
        import httpx

        from lwas.runtime.auth import Credentials
        from lwas.runtime.limits import GuardedHttpToolsProtocol
        from lwas.runtime.server import create_app
        from lwas.runtime.store import open_store

        loaded = Loaded(artifact, key)
        self.store = open_store(db)
        self.services = [loaded.service(self.store, d) for d in loaded.services]
        for s in self.services:
            s.start()
        creds = Credentials()
        creds.add_key(WRITER, "writer", "w")
        creds.add_key(READER, "reader", "r")
        creds.hs256_secret = HS.encode()
        creds.read_requires_auth = read_auth
        with pytest.MonkeyPatch.context() as mp:
            for k, v in (env or {}).items():
                mp.setenv(k, v)
            self.app = create_app(self.services, credentials=creds, public_key_pem=keys.public_pem(key),
                                  ready=self.store.ping, limiter=limiter, reporter=reporter, limits=limits)
        protocol = {} if limits is None else {"http": GuardedHttpToolsProtocol,
                                              "limit_concurrency": limits.max_connections}
        self.uvicorn = Threaded(self.app, port, **protocol)
        self.port, self.url = self.uvicorn.port, self.uvicorn.url
        self.http = httpx.Client(base_url=self.url, timeout=20)

    def close(self):
        self.http.close()
        self.uvicorn.close()
        for s in self.services:
            s.stop()
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def deref(doc: dict, node: dict) -> dict:
    """`node` with its `$ref` (into the same document) followed, as often as needed."""
    while "$ref" in node:
        target = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node
