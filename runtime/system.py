"""System metrics for services (`cpu_percent()`, `ram_used_gb()`, `ram_total_gb()`,
`uptime_secs()`), read with psutil.

CPU usage is a rate: psutil's first non-blocking `cpu_percent()` is meaningless and a blocking
one would stall a request, so one daemon thread samples it every `interval` seconds and handlers
read the last sample. Memory and uptime are read when asked (cheap, and exact at that moment).
"""
from __future__ import annotations

import threading
import time

import psutil

GIB = 1024 ** 3


class Sampler:
    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.cpu = 0.0
        self.ready = threading.Event()
        self.cpu = psutil.cpu_percent(0.2)  # a real first reading (once per process), not 0.0
        self.thread = threading.Thread(target=self._run, name="lwas-system-sampler", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            self.cpu = psutil.cpu_percent(None)
            self.ready.set()

    def read(self, which: int) -> float:
        """By index, as lwas.semantics.service.METRICS numbers them."""
        if which == 0:
            return self.cpu
        if which == 1:
            m = psutil.virtual_memory()
            return (m.total - m.available) / GIB
        if which == 2:
            return psutil.virtual_memory().total / GIB
        if which == 3:
            return max(0.0, time.time() - psutil.boot_time())
        raise ValueError(f"no system metric number {which}")


_sampler: Sampler | None = None
_lock = threading.Lock()


def sampler() -> Sampler:
    """The process's sampler, started on first use (services that read no metric start none)."""
    global _sampler
    with _lock:
        if _sampler is None:
            _sampler = Sampler()
        return _sampler
