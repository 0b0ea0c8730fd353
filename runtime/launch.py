"""`make run`: the services of services/ and the dashboard on one machine, for a person at a terminal.

    python -m lwas.runtime.launch [--host H] [--var DIR] [--dashboard-port N]
        --serve services/telemetry.lwas --port 8890 --serve services/economy.lwas --port 8891 ...

The contract, and why:

- The console is for people. It shows a start line, then, once every process answers, the URLs
  (each service, its /docs, the dashboard), the API key and the Stripe webhook secret, and after
  that only warnings and errors, one plain line each, prefixed with the process's name. Every
  record of every service, access log included, goes as JSON lines to DIR/log/NAME.log
  (`lwasc serve --log-format console --log-file ...`): the dashboard polls every 0.5 s, some 700
  access lines a minute that would bury the key on a terminal.
- Development secrets are kept in DIR (mode 0600, created once, reused), so `KEY=...` and curl
  commands keep working across restarts: DIR/dev-api-key (role admin for all services) and
  DIR/dev-stripe-webhook-secret. LWAS_API_KEYS and STRIPE_WEBHOOK_SECRET, when set, win and are
  not printed.
- Wiring, as docs/operations.md describes it (a variable already set wins): the payment service's
  LWAS_CONFIG_PAYMENT_{ECONOMY,TELEMETRY}_{URL,API_KEY}; every service but telemetry reports to
  telemetry (LWAS_REPORT_URL, LWAS_REPORT_API_KEY); the dashboard reads the three with the first
  API key (LWAS_DASHBOARD_API_KEY). Each service's ledger is DIR/NAME.db.
- Order: telemetry starts first (the others report to it), then the other services, then the
  dashboard (it reads them all), each group once the one before answers; so no first report or
  poll finds nobody there and warns about it.
- A port in use is refused before anything starts. Each process's refusals (a compile error, a
  bad setting) reach the console; a process that exits, before or after the others are ready,
  stops them all: exit 1. Ctrl-C, SIGTERM or SIGHUP stops them all, exit 0: one at a time, each
  with SIGTERM (a graceful shutdown: final checkpoints, the last telemetry report) in the reverse
  order of their start, so nobody's last report goes to a telemetry that already stopped. That
  is why each child runs in a process group of its own: the terminal's Ctrl-C reaches only this
  process, which stops the others in order. (A SIGKILL of this process leaves them running; the
  next start then says their ports are in use.)

The processes are `python -m lwas serve|dashboard`, with this interpreter: the same installation.
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROTATE_BYTES = 20 * 1024 * 1024  # a log file larger than this at start is moved to NAME.log.1
STOP_SECONDS = 20.0  # graceful shutdown (final checkpoints) before SIGKILL
KEY_FILE, WEBHOOK_FILE = "dev-api-key", "dev-stripe-webhook-secret"
_SECRET_TEXT = re.compile(r"[A-Za-z0-9_.~-]{16,200}")


class LaunchError(Exception):
    """A reason not to start: the text follows `error: ` (with `  = help: ` lines)."""


@dataclass
class Spec:
    name: str  # the file's stem: telemetry, economy, payment, ...
    file: str
    port: int


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    ready_url: str
    threads: list = field(default_factory=list)


# ------------------------------------------------------------------------------ arguments

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lwas.runtime.launch",
                                description="serve services and the dashboard on this machine, for `make run`")
    p.add_argument("--serve", action="append", default=[], metavar="FILE", help="a service source (repeatable)")
    p.add_argument("--port", action="append", default=[], type=int, metavar="N",
                   help="the port of the --serve before it (one per --serve, in order)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--var", default="var", metavar="DIR", help="ledgers, development secrets and log/ (default var)")
    p.add_argument("--dashboard-port", type=int, default=8893, metavar="N")
    p.add_argument("--ready-timeout", type=float, default=300.0, metavar="S",
                   help="seconds every process gets to answer (compiling included)")
    a = p.parse_args(argv)
    if not a.serve or len(a.serve) != len(a.port):
        p.error("give each --serve FILE its --port N")
    return a


def specs_of(a: argparse.Namespace) -> list[Spec]:
    return [Spec(Path(f).stem, f, port) for f, port in zip(a.serve, a.port)]


# ------------------------------------------------------------------------------ secrets kept in var/

def kept_secret(path: Path, make) -> tuple[str, bool]:
    """The secret in `path`, or a new one `make()` writes there (mode 0600, never replaced); and
    whether it was just created. Written beside it and linked into place, so the file is never
    seen half-written. A file readable by others is narrowed to 0600."""
    if path.exists():
        return _read_secret(path), False
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    except OSError as e:
        raise LaunchError(f"cannot create {path}: {e.strerror}") from None
    try:
        value = make()
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:  # another start made one meanwhile: use it
            return _read_secret(path), False
    finally:
        os.unlink(tmp)
    return value, True


def _read_secret(path: Path) -> str:
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise LaunchError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if not _SECRET_TEXT.fullmatch(value):
        raise LaunchError(f"{path} does not hold a development secret\n"
                          f"  = help: delete it; the next start makes a new one")
    return value


@dataclass
class Secrets:
    env: dict  # the variables to set for every process
    key: str  # the first API key: what the services and the dashboard present to each other
    key_lines: list[str]  # for the banner
    webhook_lines: list[str]


def secrets_from(var: Path, env) -> Secrets:
    """The API keys and the webhook secret: the environment's, else the ones kept in `var`."""
    out, keys = {}, env.get("LWAS_API_KEYS", "").strip()
    if keys:
        first = keys.split(",")[0].rpartition(":")[0].strip()
        key_lines = ["API keys: LWAS_API_KEYS, as set (not printed)"]
    else:
        first, _ = kept_secret(var / KEY_FILE, lambda: "lwas_dev_" + secrets.token_urlsafe(24))
        out["LWAS_API_KEYS"] = f"{first}:admin"
        key_lines = [f"development API key (role admin; kept in {var / KEY_FILE}, the same on every start):",
                     f"  KEY={first}"]
    if env.get("STRIPE_WEBHOOK_SECRET"):
        webhook_lines = ["Stripe webhook secret: STRIPE_WEBHOOK_SECRET, as set (not printed)"]
    else:
        whsec, _ = kept_secret(var / WEBHOOK_FILE, lambda: "whsec_dev_" + secrets.token_hex(16))
        out["STRIPE_WEBHOOK_SECRET"] = whsec
        webhook_lines = [f"development Stripe webhook secret (kept in {var / WEBHOOK_FILE}):", f"  WHSEC={whsec}"]
    return Secrets(out, first, key_lines, webhook_lines)


# ------------------------------------------------------------------------------ processes

def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def wiring(spec: Spec, urls: dict[str, str], key: str, env) -> dict:
    """The variables one service gets on top of the common ones (unless already set)."""
    want = {}
    if spec.name == "payment":
        for other in ("economy", "telemetry"):
            if other in urls:
                want[f"LWAS_CONFIG_PAYMENT_{other.upper()}_URL"] = urls[other]
                want[f"LWAS_CONFIG_PAYMENT_{other.upper()}_API_KEY"] = key
    if spec.name != "telemetry" and "telemetry" in urls:
        want.update(LWAS_REPORT_URL=urls["telemetry"], LWAS_REPORT_API_KEY=key)
    return {k: v for k, v in want.items() if not env.get(k)}


def serve_command(spec: Spec, host: str, var: Path) -> list[str]:
    return [sys.executable, "-m", "lwas", "serve", spec.file, "--host", host, "--port", str(spec.port),
            "--db", str(var / f"{spec.name}.db"), "--log-format", "console",
            "--log-file", str(var / "log" / f"{spec.name}.log"), "--quiet"]


def dashboard_command(urls: dict[str, str], host: str, port: int) -> list[str]:
    cmd = [sys.executable, "-m", "lwas", "dashboard", "--host", host, "--port", str(port)]
    for name in ("economy", "payment", "telemetry"):
        if name in urls:
            cmd += [f"--{name}", urls[name]]
    return cmd


def rotate(path: Path) -> None:
    """Keep one older generation of a log file that grew past ROTATE_BYTES."""
    try:
        if path.stat().st_size > ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


class Console:
    """Whole lines to the terminal from several threads: the banner on stdout, the processes'
    warnings and errors on stderr, prefixed with their name."""

    def __init__(self, width: int):
        self.width = width
        self.lock = threading.Lock()

    def say(self, line: str) -> None:
        with self.lock:
            print(line, file=sys.stdout, flush=True)

    def relay(self, name: str, line: str) -> None:
        with self.lock:
            print(f"{name:<{self.width}} | {line}", file=sys.stderr, flush=True)


def _pump(stream, name: str, console: Console, copy_to: Path | None = None) -> None:
    """Relay each line of a child's output until it closes (ends with the process)."""
    copy = open(copy_to, "a", encoding="utf-8") if copy_to else None
    try:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            console.relay(name, line)
            if copy:
                copy.write(line + "\n")
                copy.flush()
    finally:
        stream.close()
        if copy:
            copy.close()


def start(name: str, cmd: list[str], env: dict, ready_url: str, console: Console,
          stdout_file: Path | None = None) -> Proc:
    """Start one child in a process group of its own (Ctrl-C is this process's to pass on, in
    order) and relay its output: stdout and stderr for a service (its console), stderr only for
    the dashboard (its stdout goes to a file)."""
    out = open(stdout_file, "ab") if stdout_file else None
    try:
        popen = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out or subprocess.PIPE,
                                 stderr=subprocess.PIPE if out else subprocess.STDOUT, process_group=0)
    finally:
        if out:
            out.close()
    stream = popen.stderr if out else popen.stdout
    t = threading.Thread(target=_pump, args=(stream, name, console, stdout_file), daemon=True, name=f"relay-{name}")
    t.start()
    return Proc(name, popen, ready_url, [t])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as r:
            return r.status == 200
    except (OSError, ValueError):
        return False


def wait_ready(procs: list[Proc], deadline: float, stopping: threading.Event) -> Proc | None:
    """None once every process answers (or a stop is asked for); the first process that exited
    otherwise. Raises TimeoutError (naming who is not ready) at `deadline` (time.monotonic())."""
    waiting = list(procs)
    for _ in range(int(max(0.0, deadline - time.monotonic()) / 0.2) + 2):
        for p in list(waiting):
            if p.popen.poll() is not None:
                return p
            if _answers(p.ready_url):
                waiting.remove(p)
        if not waiting or stopping.wait(0.2):
            return None
        if time.monotonic() > deadline:
            break
    raise TimeoutError(", ".join(p.name for p in waiting))


def stop_all(procs: list[Proc], timeout: float = STOP_SECONDS) -> None:
    """Stop the children in the reverse order of their start: SIGTERM, then SIGKILL if one is
    still running after `timeout` seconds (or at once on a second Ctrl-C)."""
    try:
        for p in reversed(procs):
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
                try:
                    p.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    p.popen.kill()
    except KeyboardInterrupt:  # Ctrl-C again: no more waiting
        for p in procs:
            if p.popen.poll() is None:
                p.popen.kill()
    for p in procs:
        p.popen.wait(timeout=10)
        for t in p.threads:
            t.join(timeout=5)


# ------------------------------------------------------------------------------ the run

def check_ports(host: str, wanted: list[tuple[str, int]]) -> None:
    """LaunchError for the first port that cannot be bound (nothing is started then)."""
    import errno

    from lwas.runtime.serve import _bind_all, bind_error

    for name, port in wanted:
        try:
            for s in _bind_all(host, port):
                s.close()
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise LaunchError(f"port {port} on {host} is in use; {name} serves there\n"
                                  f"  = help: is another `make run` still running? Stop it (Ctrl-C), or stop "
                                  f"what listens on {port}") from None
            raise LaunchError(str(bind_error(host, port, e))) from None


def banner(specs: list[Spec], host: str, dashboard_port: int, sec: Secrets, var: Path, seconds: float,
           env) -> list[str]:
    width = max(len(s.name) for s in specs + [Spec("dashboard", "", 0)])
    lines = [f"ready in {seconds:.1f} s:"]
    for s in specs:
        url = url_of(host, s.port)
        lines.append(f"  {s.name:<{width}}  {url}/   docs: {url}/docs")
    lines.append(f"  {'dashboard':<{width}}  {url_of(host, dashboard_port)}/")
    lines += sec.key_lines
    some = next((s for s in specs if s.name == "economy"), specs[0])
    lines.append(f"  curl -H \"Authorization: Bearer $KEY\" {url_of(host, some.port)}/...")
    lines += sec.webhook_lines
    if any(s.name == "payment" for s in specs) and not env.get("STRIPE_SECRET_KEY"):
        lines.append("note: STRIPE_SECRET_KEY is not set: payment intents answer 503 until it is")
    lines.append(f"logs (JSON, access log included): {var / 'log'}/{{{','.join(s.name for s in specs)}}}.log")
    lines.append("only warnings and errors from here on; Ctrl-C stops everything")
    return lines


def stages(specs: list[Spec]) -> list[list[Spec]]:
    """The order of the start: telemetry first (the others report to it), then the other services;
    the dashboard (it reads them all) comes last. Nobody's first report finds nobody there."""
    first = [s for s in specs if s.name == "telemetry"]
    return [group for group in (first, [s for s in specs if s.name != "telemetry"]) if group]


def run(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    specs, var, host = specs_of(a), Path(a.var), a.host
    console = Console(max(len(s.name) for s in specs + [Spec("dashboard", "", 0)]))
    try:
        check_ports(host, [(s.name, s.port) for s in specs] + [("the dashboard", a.dashboard_port)])
        (var / "log").mkdir(parents=True, exist_ok=True)
        sec = secrets_from(var, os.environ)
    except (LaunchError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    console.say(f"LwaS: starting {', '.join(s.name for s in specs)} and the dashboard on {host} "
                f"(state in {var}/, JSON logs in {var / 'log'}/) ...")
    urls = {s.name: url_of(host, s.port) for s in specs}
    common = {k: v for k, v in os.environ.items() if k != "LWAS_SERVE_CONFIG"}
    common.update(sec.env, PYTHONUNBUFFERED="1")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGHUP, lambda *_: stopping.set())
    procs: list[Proc] = []
    t0 = time.monotonic()
    deadline = t0 + a.ready_timeout
    try:
        for group in stages(specs):
            for s in group:
                rotate(var / "log" / f"{s.name}.log")
                env = {**common, **wiring(s, urls, sec.key, os.environ)}
                procs.append(start(s.name, serve_command(s, host, var), env, urls[s.name] + "/readyz", console))
            if (code := _until_ready(procs, deadline, stopping)) is not None:
                return code
        dash_env = {**common, "LWAS_DASHBOARD_API_KEY": os.environ.get("LWAS_DASHBOARD_API_KEY") or sec.key}
        procs.append(start("dashboard", dashboard_command(urls, host, a.dashboard_port), dash_env,
                           url_of(host, a.dashboard_port) + "/healthz", console,
                           stdout_file=var / "log" / "dashboard.log"))
        if (code := _until_ready(procs, deadline, stopping)) is not None:
            return code
        for line in banner(specs, host, a.dashboard_port, sec, var, time.monotonic() - t0, os.environ):
            console.say(line)
        return _watch(procs, stopping, console)
    except KeyboardInterrupt:
        console.say("stopping (Ctrl-C) ...")
        return 0
    finally:
        stop_all(procs)
        if procs:
            console.say("stopped.")


def _until_ready(procs: list[Proc], deadline: float, stopping: threading.Event) -> int | None:
    """None when every process answers; else the exit code of the launcher (1: one exited or is
    not ready in time, 0: a stop was asked for)."""
    try:
        died = wait_ready(procs, deadline, stopping)
    except TimeoutError as e:
        print(f"error: not ready in time: {e}; stopping everything", file=sys.stderr)
        return 1
    if died is not None:
        return _died(died)
    return 0 if stopping.is_set() else None


def _died(p: Proc) -> int:
    for t in p.threads:  # its last words first
        t.join(timeout=2)
    print(f"error: {p.name} exited (code {p.popen.returncode}); stopping everything", file=sys.stderr)
    return 1


def _watch(procs: list[Proc], stopping: threading.Event, console: Console) -> int:
    """Until a stop is asked for (0) or a process exits (1)."""
    while not stopping.wait(0.5):
        died = next((p for p in procs if p.popen.poll() is not None), None)
        if died is not None:
            return _died(died)
    console.say("stopping ...")
    return 0


if __name__ == "__main__":
    sys.exit(run())
