"""Service throughput and latency against a bare FastAPI endpoint, measured in the same run.

Both servers run under uvicorn (uvloop + httptools), one worker, access log off, on 127.0.0.1;
wrk (Debian's) is the load generator, bounded in time. Figures:

- POST /transfers of examples/bank.lwas (auth, strict body validation, guard, native handler,
  a durable SQLite append with synchronous=FULL and group commit) vs a bare FastAPI POST that
  reads the body and returns a small JSON: requests/s and the ratio (goal >= 0.7);
- p50 latency of the same POST at low load (one connection; goal < 1 ms);
- the batch route (1000 transfers per request): durable appends/s (goal >= 20,000).

Each figure is the median of ROUNDS runs; the machine is shared and noisy. Needs `wrk` on PATH
(`apt-get install wrk`). Run: .venv/bin/python bench/bench_service.py
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
KEY = "bench-key-0123456789abcdef"
PY = sys.executable
LWASC = str(Path(PY).with_name("lwasc"))

BARE = textwrap.dedent('''
    from fastapi import FastAPI, Request
    app = FastAPI()

    @app.post("/noop")
    async def noop(request: Request):
        await request.body()
        return {"ok": True}
''')

WRK_POST = textwrap.dedent('''
    counter = 0
    local thread_id = 0
    setup = function(thread)
      thread_id = thread_id + 1
      thread:set("tid", thread_id)
    end
    request = function()
      counter = counter + 1
      local body = string.format(
        '{"id":"%s-%d-%d","account":"a","amount":{"amount":"12.50","currency":"USD"},"kind":"Deposit"}',
        os.getenv("RUN") or "r", tid or 0, counter)
      return wrk.format("POST", nil, {["Content-Type"]="application/json",
                                      ["Authorization"]="Bearer KEY"}, body)
    end
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start")


def start(cmd: list[str], env: dict, ready: str) -> subprocess.Popen:
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(os.devnull if not os.environ.get("BENCH_DEBUG") else "/dev/stderr", "w"),
                         start_new_session=True)
    try:
        wait_ready(ready)
    except BaseException:
        stop(p)
        raise
    return p


def stop(p: subprocess.Popen) -> None:
    os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)


def wrk(url: str, conns: int, script: str | None, run: str) -> tuple[float, float]:
    """(requests/s, p50 latency in ms)."""
    cmd = ["wrk", "-t", "2" if conns > 1 else "1", "-c", str(conns), "-d", f"{SECONDS}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 30,
                         env={**os.environ, "RUN": run}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    p50 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} error responses:\n{out}")
    return rps, p50


def batch_rate(url: str, run: str) -> float:
    """Durable appends/s through POST /transfers/batch (1000 per request), one client."""
    headers = {"Authorization": f"Bearer {KEY}"}
    n, t0, i = 0, time.perf_counter(), 0
    with httpx.Client(timeout=60) as c:
        while time.perf_counter() - t0 < SECONDS and i < 200:
            body = {"transfers": [{"id": f"{run}-b{i}-{k}", "account": "a", "kind": "Deposit",
                                   "amount": {"amount": "1.00", "currency": "USD"}} for k in range(1000)]}
            r = c.post(url, json=body, headers=headers)
            if r.status_code != 200:
                raise SystemExit(f"batch failed: {r.status_code} {r.text[:300]}")
            n += 1000
            i += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("bench_service needs wrk (apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="lwas-bench-"))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp / "config"), "LWAS_API_KEYS": f"{KEY}:admin"}
    (tmp / "bare.py").write_text(BARE)
    (tmp / "post.lua").write_text(WRK_POST.replace("Bearer KEY", f"Bearer {KEY}"))
    key = tmp / "bench.key"
    subprocess.run([LWASC, "keygen", str(key)], check=True, env=env, capture_output=True)
    art = tmp / "bank.lwasart"
    subprocess.run([LWASC, "build", str(ROOT / "examples" / "bank.lwas"), "-o", str(art), "--key", str(key)],
                   check=True, env=env, capture_output=True)
    results: dict[str, list[float]] = {k: [] for k in ("bare", "lwas", "ratio", "p50", "bare_p50", "batch")}
    for r in range(ROUNDS):
        port = free_port()
        bare = start([PY, "-m", "uvicorn", "bare:app", "--port", str(port), "--host", "127.0.0.1",
                      "--no-access-log", "--log-level", "warning", "--app-dir", str(tmp)],
                     env, f"http://127.0.0.1:{port}/docs")
        try:
            b, _ = wrk(f"http://127.0.0.1:{port}/noop", 32, str(tmp / "post.lua"), f"bare{r}")
            _, bp50 = wrk(f"http://127.0.0.1:{port}/noop", 1, str(tmp / "post.lua"), f"bare1{r}")
        finally:
            stop(bare)
        port = free_port()
        db = tmp / f"ledger{r}.db"
        srv = start([LWASC, "serve", str(art), "--key", str(key), "--pubkey", str(key) + ".pub",
                     "--db", str(db), "--port", str(port), "--log-level", "warning"],
                    env, f"http://127.0.0.1:{port}/readyz")
        try:
            url = f"http://127.0.0.1:{port}/transfers"
            s, _ = wrk(url, 32, str(tmp / "post.lua"), f"lwas{r}")
            _, p50 = wrk(url, 1, str(tmp / "post.lua"), f"lwas1{r}")
            batch = batch_rate(f"http://127.0.0.1:{port}/transfers/batch", f"batch{r}")
        finally:
            stop(srv)
        for k, v in (("bare", b), ("lwas", s), ("ratio", s / b), ("p50", p50), ("bare_p50", bp50), ("batch", batch)):
            results[k].append(v)
        print(f"round {r + 1}: bare {b:,.0f} req/s, lwas {s:,.0f} req/s (ratio {s / b:.2f}), "
              f"p50 {p50:.3f} ms (bare {bp50:.3f} ms), batch {batch:,.0f} appends/s", flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(json.dumps({k: round(v, 3) for k, v in med.items()}))
    print(f"median: POST /transfers {med['lwas']:,.0f} req/s vs bare FastAPI {med['bare']:,.0f} req/s = "
          f"{med['ratio']:.2f} (goal >= 0.7); p50 at 1 connection {med['p50']:.3f} ms (goal < 1 ms; bare "
          f"{med['bare_p50']:.3f} ms); batch {med['batch']:,.0f} durable appends/s (goal >= 20,000)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
