"""The console of `make run` and of `lwasc serve`: short and readable for people, JSON for machines.

- `make run` (runtime/launch.py, which the Makefile calls) is started for real on free loopback
  ports with a temporary var/ directory: the console holds the banner, the URLs and the keys and
  stays under 30 lines while the dashboard polls (some 700 access lines a minute), and those
  access lines are in var/log/NAME.log as JSON. The development key and webhook secret are kept
  in var/ (0600) and are the same on the second start, where the first start's key still works.
- `lwasc serve` on a port in use and on a file with no service: one clear error, no traceback,
  no key, no `serving` line, no temporary path.
- The pieces (where logs go, the kept secrets, the wiring) in-process.

Servers bind 127.0.0.1 only; every wait is bounded in time.
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from helpers import ROOT
from serving import HOST, _lwasc_cmd, free_port, isolated_env

from lwas.runtime import launch, logs
from lwas.runtime.serve import ServeError, listen

SERVICES = ("telemetry", "economy", "payment")
READY_LINE = "only warnings and errors from here on"
MAX_CONSOLE_LINES = 30


def launcher_env(home: Path) -> dict:
    """No credentials, webhook secret, wiring or log settings from the developer's environment."""
    env = isolated_env(home)
    for k in list(env):
        if k in ("LWAS_API_KEYS", "STRIPE_WEBHOOK_SECRET", "STRIPE_SECRET_KEY", "LWAS_DASHBOARD_API_KEY",
                 "LWAS_READ_REQUIRES_AUTH", "LWAS_AUTH_CONFIG", "LWAS_JWT_HS256_SECRET") \
                or k.startswith(("LWAS_CONFIG_", "LWAS_REPORT_", "LWAS_LOG_")):
            del env[k]
    return env


class Run:
    """One `make run`-like start: the launcher's console (stdout and stderr) in a file."""

    def __init__(self, var: Path, home: Path, console: Path):
        self.var, self.console = var, console
        self.ports = {name: free_port() for name in SERVICES}
        self.dashboard_port = free_port()
        cmd = [sys.executable, "-m", "lwas.runtime.launch", "--host", HOST, "--var", str(var),
               "--dashboard-port", str(self.dashboard_port), "--ready-timeout", "240"]
        for name in SERVICES:
            cmd += ["--serve", str(ROOT / "services" / f"{name}.lwas"), "--port", str(self.ports[name])]
        with open(console, "wb") as out:
            self.proc = subprocess.Popen(cmd, env=launcher_env(home), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.family = []  # the launcher's children, for the cleanup of a failed test

    def text(self) -> str:
        return self.console.read_text(errors="replace")

    def wait_ready(self, timeout: float = 300.0) -> str:
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.2) + 1):
            text = self.text()
            if READY_LINE in text:
                self.family = psutil.Process(self.proc.pid).children(recursive=True)
                return text
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        raise AssertionError(f"not ready (exit {self.proc.poll()}):\n{self.text()[-4000:]}")

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.ports[name]}"

    def stop(self, timeout: float = 90.0) -> int:
        """SIGTERM, as a terminal's Ctrl-C would stop it: it stops its children in order."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        for p in [*self.family, psutil.Process(self.proc.pid) if self.proc.poll() is None else None]:
            if p is None:
                continue
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        psutil.wait_procs(self.family, timeout=10)


def transaction(tx_id: str) -> dict:
    return {"id": tx_id, "amount": 12.5, "currency": "USD", "timestamp": "2026-01-25T02:52:48.340Z",
            "tx_type": "Payment", "metadata": {}}


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_make_run_console_is_short_and_the_json_logs_are_in_var_log(tmp_path):
    var, home = tmp_path / "var", tmp_path / "home"
    first = Run(var, home, tmp_path / "console-1.txt")
    try:
        text = first.wait_ready()
        key = (var / "dev-api-key").read_text().strip()
        whsec = (var / "dev-stripe-webhook-secret").read_text().strip()
        for name in SERVICES:
            assert f"{first.url(name)}/" in text and f"{first.url(name)}/docs" in text, text
        assert f"http://{HOST}:{first.dashboard_port}/" in text, text
        assert f"KEY={key}" in text and f"WHSEC={whsec}" in text, text
        with httpx.Client(timeout=20) as http:
            r = http.post(first.url("economy") + "/transaction", json=transaction("tx_first"),
                          headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text
        time.sleep(4.0)  # the dashboard polls the three services every 0.5 s
        lines = first.text().splitlines()
        assert len(lines) < MAX_CONSOLE_LINES, "\n".join(lines)
        assert not [line for line in lines if line.lstrip().startswith("{")], "\n".join(lines)
        assert first.stop() == 0, first.text()
    finally:
        first.kill()
    lines = first.text().splitlines()
    assert len(lines) < MAX_CONSOLE_LINES and lines[-1] == "stopped.", "\n".join(lines)
    # the first start says it creates each ledger database (loudly: a missing database is news)
    created = [line for line in lines if "does not exist: creating an empty one" in line]
    assert len(created) == len(SERVICES), "\n".join(lines)
    assert not [line for line in lines if re.search(r"\b(warning|error): ", line) and line not in created], \
        "\n".join(lines)
    for name in SERVICES:
        records = json_lines(var / "log" / f"{name}.log")
        access = [r for r in records if r["logger"] == "lwas.http" and r["msg"] == "request"]
        assert len(access) >= 5, (name, len(access))  # the dashboard's polls, none of them on the console
    economy = json_lines(var / "log" / "economy.log")
    assert any(r.get("path") == "/transaction" and r.get("status") == 200 for r in economy)
    for secret in ("dev-api-key", "dev-stripe-webhook-secret"):
        assert stat.S_IMODE((var / secret).stat().st_mode) == 0o600

    second = Run(var, home, tmp_path / "console-2.txt")  # the same var/: the same key, which still works
    try:
        text = second.wait_ready()
        assert f"KEY={key}" in text and f"WHSEC={whsec}" in text, text
        with httpx.Client(timeout=20) as http:
            r = http.post(second.url("economy") + "/transaction", json=transaction("tx_second"),
                          headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text
        assert second.stop() == 0, second.text()
    finally:
        second.kill()
    assert (var / "dev-api-key").read_text().strip() == key
    lines = second.text().splitlines()
    assert not [line for line in lines if re.search(r"\b(warning|error): ", line)], "\n".join(lines)


def test_make_run_refuses_a_port_in_use_before_starting_anything(tmp_path):
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        cmd = [sys.executable, "-m", "lwas.runtime.launch", "--host", HOST, "--var", str(tmp_path / "var"),
               "--dashboard-port", str(free_port()), "--serve", str(ROOT / "services" / "economy.lwas"),
               "--port", str(port)]
        r = subprocess.run(cmd, env=launcher_env(tmp_path / "home"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"error: port {port} on {HOST} is in use; economy serves there" in r.stderr, r.stderr
    assert "help:" in r.stderr and "Traceback" not in r.stderr
    assert "KEY=" not in r.stdout + r.stderr and not (tmp_path / "var" / "dev-api-key").exists()


# ------------------------------------------------------------------------------ lwasc serve refusals

def serve(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = launcher_env(home)  # no API keys: a development key would be printed if one were made
    return subprocess.run([*_lwasc_cmd(), "serve", *args], env=env, capture_output=True, text=True, timeout=120)


def test_serve_on_a_port_in_use_is_one_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = serve(str(ROOT / "examples" / "bank.lwas"), "--host", HOST, "--port", str(port),
                  "--db", str(tmp_path / "bank.db"), home=tmp_path / "home")
    assert r.returncode != 0
    assert f"error: port {port} on {HOST} is in use" in r.stderr, r.stderr
    assert re.search(r"help: .*--port \d+", r.stderr), r.stderr
    assert "address already in use" in r.stderr  # the system's reason, as a note
    for absent in ("Traceback", "serving", "development API key", "KEY="):
        assert absent not in r.stderr + r.stdout, r.stderr
    assert not [line for line in r.stderr.splitlines() if line.startswith("{")], r.stderr


@pytest.mark.parametrize("as_artifact", [False, True], ids=["source", "artifact"])
def test_serve_on_a_file_without_a_service_refuses_up_front(tmp_path, as_artifact):
    target = str(ROOT / "examples" / "fib.lwas")
    home = tmp_path / "home"
    if as_artifact:
        out = str(tmp_path / "fib.lwasart")
        b = subprocess.run([*_lwasc_cmd(), "build", target, "-o", out], env=launcher_env(home),
                           capture_output=True, text=True, timeout=120)
        assert b.returncode == 0, b.stderr
        target = out
    r = serve(target, "--host", HOST, "--port", str(free_port()), "--db", str(tmp_path / "l.db"), home=home)
    assert r.returncode == 1, r.stderr
    assert f"error: `{target}` declares no service" in r.stderr, r.stderr
    assert "help:" in r.stderr and "docs/services.md" in r.stderr, r.stderr
    for absent in ("Traceback", "serving", "development API key", "KEY=", "lwas-serve-"):
        assert absent not in r.stderr + r.stdout, r.stderr
    if not as_artifact:
        assert ".lwasart" not in r.stderr, r.stderr  # never the temporary artifact
    assert not (tmp_path / "l.db").exists()  # refused before the store was opened


def test_serve_logs_json_to_stderr_unless_asked_and_to_a_file(tmp_path):
    """Not a terminal (systemd, Kubernetes, a pipe): JSON on stderr as before. `--log-format
    console --log-file F`: stderr keeps the start lines only, F gets every record as JSON."""
    db, log_file = tmp_path / "bank.db", tmp_path / "logs" / "bank.log"
    runs = {"json": [], "console": ["--log-format", "console", "--log-file", str(log_file)]}
    for fmt, flags in runs.items():
        port = free_port()
        err = tmp_path / f"stderr-{fmt}.txt"
        cmd = [*_lwasc_cmd(), "serve", str(ROOT / "examples" / "bank.lwas"), "--host", HOST, "--port", str(port),
               "--db", str(db), *flags]
        with open(err, "wb") as f:
            proc = subprocess.Popen(cmd, env=isolated_env(tmp_path / "home"), stdout=f, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            with httpx.Client(timeout=5) as http:
                for _ in range(1200):
                    try:
                        if http.get(f"http://{HOST}:{port}/readyz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
                    time.sleep(0.1)
                for _ in range(3):
                    http.get(f"http://{HOST}:{port}/healthz")
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        text = err.read_text()
        records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        if fmt == "json":
            assert sum(r.get("path") == "/healthz" for r in records) == 3, text
        else:
            assert records == [] and "serving" in text and str(log_file) in text, text
            in_file = json_lines(log_file)
            assert sum(r.get("path") == "/healthz" for r in in_file) == 3


# ------------------------------------------------------------------------------ the pieces

@pytest.fixture
def root_logging():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield root
    for h in root.handlers:
        if h not in saved[0]:
            h.close()
    root.handlers[:], root.level = saved


def test_log_format_flag_then_environment_then_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert logs.resolve_format(None, {}, Tty()) == "console"
    assert logs.resolve_format(None, {}, io.StringIO()) == "json"  # systemd, k8s, pipes: unchanged
    assert logs.resolve_format(None, {"LWAS_LOG_FORMAT": "json"}, Tty()) == "json"
    assert logs.resolve_format("console", {"LWAS_LOG_FORMAT": "json"}, io.StringIO()) == "console"
    with pytest.raises(logs.LogSetupError, match="LWAS_LOG_FORMAT must be one of"):
        logs.resolve_format(None, {"LWAS_LOG_FORMAT": "yaml"}, io.StringIO())
    assert logs.resolve_file(None, {"LWAS_LOG_FILE": "/x.log"}) == "/x.log"
    assert logs.resolve_file("/y.log", {"LWAS_LOG_FILE": "/x.log"}) == "/y.log"


def test_console_shows_warnings_plainly_and_the_file_keeps_everything(root_logging, tmp_path, capsys):
    path = tmp_path / "log" / "svc.log"
    logs.configure("info", "console", str(path))
    http = logging.getLogger("lwas.http")
    http.info("request", extra={"method": "GET", "path": "/x", "status": 200})
    logging.getLogger("lwas.report").warning("telemetry is unreachable")
    try:
        raise ValueError("bad answer")
    except ValueError:
        logging.getLogger("lwas.dashboard").exception("poll failed")
    for h in root_logging.handlers:
        h.flush()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert re.fullmatch(r"\d\d:\d\d:\d\d warning: telemetry is unreachable", err[0]), err
    assert err[1].endswith("error: poll failed: ValueError: bad answer"), err
    records = json_lines(path)
    assert [r["level"] for r in records] == ["info", "warning", "error"]
    assert records[0]["path"] == "/x" and "Traceback" in records[2]["exc"]


def test_console_alone_does_not_build_access_lines(root_logging, capsys):
    logs.configure("info", "console", None)
    assert not logging.getLogger("lwas.http").isEnabledFor(logging.INFO)
    logs.configure("info", "json", None)
    assert logging.getLogger("lwas.http").isEnabledFor(logging.INFO)


def test_kept_secrets_are_created_once_private_and_checked(tmp_path):
    path = tmp_path / "dev-api-key"
    value, created = launch.kept_secret(path, lambda: "lwas_dev_" + "a" * 32)
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert launch.kept_secret(path, lambda: "other") == (value, False)
    path.chmod(0o644)
    assert launch.kept_secret(path, lambda: "other") == (value, False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("not a key: with spaces\n")
    with pytest.raises(launch.LaunchError, match="delete it"):
        launch.kept_secret(path, lambda: "other")


def test_explicit_credentials_win_and_are_not_printed(tmp_path):
    sec = launch.secrets_from(tmp_path, {"LWAS_API_KEYS": "k1234567890:admin,k2:writer", "STRIPE_WEBHOOK_SECRET": "w"})
    assert sec.env == {} and sec.key == "k1234567890"
    assert "k1234567890" not in "\n".join(sec.key_lines + sec.webhook_lines)
    assert list(tmp_path.iterdir()) == []


def test_wiring_follows_make_run():
    urls = {"telemetry": "http://t", "economy": "http://e", "payment": "http://p"}
    spec = {n: launch.Spec(n, f"{n}.lwas", 1) for n in urls}
    pay = launch.wiring(spec["payment"], urls, "K", {})
    assert pay["LWAS_CONFIG_PAYMENT_ECONOMY_URL"] == "http://e" and pay["LWAS_CONFIG_PAYMENT_TELEMETRY_API_KEY"] == "K"
    assert pay["LWAS_REPORT_URL"] == "http://t"
    assert launch.wiring(spec["telemetry"], urls, "K", {}) == {}
    assert launch.wiring(spec["economy"], urls, "K", {"LWAS_REPORT_URL": "http://elsewhere"}) == \
        {"LWAS_REPORT_API_KEY": "K"}


def test_listen_names_the_port_and_a_free_one(tmp_path):
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServeError) as e:
            listen(HOST, port)
    text = str(e.value)
    assert text.startswith(f"port {port} on {HOST} is in use\n  = note: bind({HOST}:{port}): address already in use")
    assert "\n  = help: " in text and "--port" in text
    socks = listen(HOST, 0)  # an ephemeral port works, and is the one serve announces
    try:
        assert socks and socks[0].getsockname()[1] > 0
    finally:
        for s in socks:
            s.close()
