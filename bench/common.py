"""Timing, machine rates (sgemm, memory copy) and peak-memory helpers shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, {gpu}; clock: {CLOCK['name']}")


def sync(device: torch.device | str = "cpu") -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@dataclass
class Timing:
    """Repeated wall-clock timings of one callable (seconds)."""

    times: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


#: The clock of every timing: wall time (``perf_counter``, the default) or, with
#: ``python -m bench --clock cpu``, the process's CPU time with torch on one thread, which other
#: processes sharing the cores do not inflate (they take turns on the cores; a thread waiting at
#: an OpenMP barrier for a descheduled sibling would still spin, hence one thread).
CLOCK = {"name": "wall", "fn": time.perf_counter}


def use_cpu_clock() -> None:
    torch.set_num_threads(1)
    CLOCK.update(name="cpu", fn=time.process_time)


def now() -> float:
    return CLOCK["fn"]()


def time_fn(fn: Callable[[], object], repeats: int, warmup: int = 1, device="cpu") -> Timing:
    """Best-of / median-of ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = Timing()
    for _ in range(repeats):
        t0 = now()
        fn()
        sync(device)
        out.times.append(now() - t0)
    return out


def mm_time(m: int, k: int, n: int, layout: str = "nn", repeats: int = 5, device="cpu",
            dtype=torch.float32) -> Timing:
    """Time of one torch.mm producing (m, n) from a (m, k) by (k, n) product.

    ``layout`` says how the operands are stored, as in the model: ``nt`` = A @ B.t() with B
    stored (n, k) (a linear layer's forward, x W^T); ``tn`` = A.t() @ B with A stored (k, m) (a
    weight gradient, δ^T x); ``nn`` = A @ B (an input gradient, δ W).
    """
    gen = torch.Generator(device=device).manual_seed(0)
    rand = lambda *s: torch.randn(*s, generator=gen, device=device, dtype=dtype)
    a = rand(k, m) if layout[0] == "t" else rand(m, k)
    b = rand(n, k) if layout[1] == "t" else rand(k, n)
    a_ = a.t() if layout[0] == "t" else a
    b_ = b.t() if layout[1] == "t" else b
    out = torch.empty(m, n, device=device, dtype=dtype)
    return time_fn(lambda: torch.mm(a_, b_, out=out), repeats, warmup=1, device=device)


def copy_bandwidth(nbytes: int = 256 * 2**20, repeats: int = 7, device="cpu") -> float:
    """Memory-copy bandwidth in bytes/s: (read + write) bytes of one ``copy_`` of ``nbytes``."""
    n = nbytes // 4
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    t = time_fn(lambda: dst.copy_(src), repeats, warmup=2, device=device)
    return 2 * nbytes / t.best


def peak_rss_of(code: str, timeout: float = 3600) -> dict:
    """Run ``code`` (Python source that prints one JSON object as its last line) in a fresh
    interpreter and return that object plus ``peak_rss_bytes``, the child's VmHWM (peak resident
    set, read from /proc/self/status by the child itself at its end). Tracemalloc cannot see
    torch's allocations; a fresh process per variant keeps the peaks apart."""
    epilogue = ("\nimport json as _j\n"
                "_hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
                "print(_j.dumps({'peak_rss_bytes': int(_hwm.split()[1]) * 1024}))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src"),
                                                         os.environ.get("PYTHONPATH", "")]),
           "VAEAS_BENCH_CLOCK": CLOCK["name"]}
    proc = subprocess.run([sys.executable, "-c", code + epilogue], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{proc.stderr[-3000:]}")
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    out = {}
    for obj in lines:
        out.update(obj)
    return out


def fmt_s(seconds: float) -> str:
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.1f} ms"
