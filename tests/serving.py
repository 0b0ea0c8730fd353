"""Run `lwasc serve` as a real subprocess for end-to-end tests.

`served(...)` picks a free 127.0.0.1 port, starts the server with its own API key
(`LWAS_API_KEYS`) and with XDG_CONFIG_HOME / XDG_CACHE_HOME pointed into a temporary directory
(the developer's own dev key and trusted keys are never read or written), waits for /readyz
(bounded in time), yields a `Server` (base URL, Popen, log path) and, on exit, kills the whole
process group it started (uvicorn `--workers N` children included) and waits for it.

`lwasc(...)` runs any other lwasc command in the same isolated environment.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

API_KEY = "durability-test-key"
GRACEFUL = (0, -signal.SIGTERM)
HOST = "127.0.0.1"


def _lwasc_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("lwasc")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lwas"]


def isolated_env(home: Path, api_key: str = API_KEY) -> dict:
    env = dict(os.environ)
    for var in ("LWAS_AUTH_CONFIG", "LWAS_SIGNING_KEY", "LWAS_SERVE_CONFIG"):
        env.pop(var, None)
    env["LWAS_API_KEYS"] = f"{api_key}:admin"
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["XDG_CACHE_HOME"] = str(home / "cache")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def lwasc(*args: str, home: Path, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run `lwasc ARGS` (isolated config dirs); stdout and stderr captured as text."""
    return subprocess.run([*_lwasc_cmd(), *map(str, args)], env=isolated_env(home), capture_output=True,
                          text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path
    api_key: str = API_KEY

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"}

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def crash(self, timeout: float = 10.0) -> None:
        """SIGKILL the whole process group (no shutdown handler runs), then reap it."""
        _killpg(self.proc)
        self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (uvicorn's graceful shutdown: the services store a final checkpoint); the exit
        code, one of GRACEFUL when it shut down cleanly (uvicorn re-raises the captured SIGTERM
        after its shutdown, so a single-process server ends with -SIGTERM; the `--workers N`
        supervisor exits 0). Falls back to SIGKILL if it does not exit within `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _killpg(self.proc)
                self.proc.wait(timeout=10)
                raise AssertionError(f"server did not stop within {timeout} s on SIGTERM:\n"
                                     f"{self.log_text()[-4000:]}") from None
        return self.proc.returncode


def _killpg(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this module created (start_new_session)
    except ProcessLookupError:
        pass


@contextmanager
def served(target: Path | str, *, db: str, key: Path, pubkey: Path, home: Path, workers: int = 1,
           ready_timeout: float = 60.0, api_key: str = API_KEY, log_level: str = "warning",
           attempts: int = 3):
    """Start `lwasc serve TARGET --db DB ...` on a free port and yield a ready `Server`."""
    home.mkdir(parents=True, exist_ok=True)
    env = isolated_env(home, api_key)
    server = None
    for attempt in range(attempts):  # a free port can be taken between probe and bind: retry
        port = free_port()
        log = home / f"serve-{port}-{time.monotonic_ns()}.log"
        cmd = [*_lwasc_cmd(), "serve", str(target), "--db", str(db), "--host", HOST, "--port", str(port),
               "--workers", str(workers), "--key", str(key), "--pubkey", str(pubkey),
               "--log-level", log_level]
        with open(log, "wb") as logf:
            proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        candidate = Server(f"http://{HOST}:{port}", proc, log, api_key)
        try:
            if _wait_ready(candidate, ready_timeout):
                server = candidate
                break
        except BaseException:
            _killpg(proc)
            proc.wait(timeout=10)
            raise
        early_exit = proc.poll()  # None: still running but not ready within ready_timeout
        _killpg(proc)
        proc.wait(timeout=10)
        text = candidate.log_text()
        if "address already in use" not in text.lower() or attempt == attempts - 1:
            why = f"exited with {early_exit}" if early_exit is not None else f"not ready in {ready_timeout} s"
            raise AssertionError(f"lwasc serve {why}:\n{text[-4000:]}")
    assert server is not None
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            _killpg(server.proc)
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _killpg(server.proc)  # stray uvicorn workers of a parent that already exited


def _wait_ready(server: Server, timeout: float) -> bool:
    """True once GET /readyz answers 200; False if the process exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as c:
        for _ in range(int(timeout / 0.05) + 1):
            if server.proc.poll() is not None:
                return False
            try:
                if c.get(server.url + "/readyz").status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
    return False
