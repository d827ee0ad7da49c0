"""Benchmark 2: Monte Carlo MI/MD at S = 55,000 (z of 40 dimensions), wall time and peak memory,
against the straightforward batched formula (bench.naive.straightforward_log_aggregate).

Each variant runs in its own fresh interpreter, which reports its own peak resident set
(VmHWM); ours with the glibc tuning the pipeline applies (vaeas.runtime.tune_allocator), the
straightforward one with the default allocator (as research code runs; the tuning would
fragment its heap of 1 GB temporaries and raise its peak). The posteriors are synthetic
(μ ~ N(0, 1), log σ² ~ U(−4, 0)) and identical in both. The straightforward variant processes
``fraction`` of the S rows of z and its time is scaled by 1 / fraction (its cost is the same
for every batch of rows; its peak memory is that of one batch), unless ``fraction`` is 1.
"""

from __future__ import annotations

from .common import peak_rss_of

S, D = 55_000, 40

_SETUP = f"""
import os, time, math, torch
clock = time.perf_counter
if os.environ.get("VAEAS_BENCH_CLOCK") == "cpu":     # bench --clock cpu: CPU time, one thread
    torch.set_num_threads(1)
    clock = time.process_time
torch.manual_seed(0)
S, D = {S}, {D}
mu = torch.randn(S, D)
logvar = torch.rand(S, D) * -4.0
gen = torch.Generator().manual_seed(1)
"""

_OURS = _SETUP + """
from vaeas.estimators import mc_estimates
from vaeas.runtime import tune_allocator
tune_allocator()                                      # as vaeas.evaluation.monte_carlo does
t0 = clock()
res = mc_estimates(mu, logvar, gen, chunk={chunk})
wall = clock() - t0
import json; print(json.dumps({{"wall_s": wall, "mi": res["mi"], "md": res["md"]}}))
"""

_STRAIGHT = _SETUP + """
from bench.naive import straightforward_log_aggregate
from vaeas.estimators import log_normal_diag, log_standard_normal
eps = torch.randn(mu.shape, generator=gen, dtype=torch.float64)
z = (mu.double() + torch.exp(0.5 * logvar.double()) * eps).float()
rows = max(1, int(round(S * {fraction})))
t0 = clock()
log_qbar = straightforward_log_aggregate(z[:rows], mu, logvar, batch={batch})
log_q = log_normal_diag(z[:rows], mu[:rows], logvar[:rows])
log_p = log_standard_normal(z[:rows])
mi, md = (log_q - log_qbar).mean().item(), (log_qbar - log_p).mean().item()
wall = clock() - t0
import json; print(json.dumps({{"wall_s": wall / (rows / S), "rows": rows, "mi": mi, "md": md}}))
"""


def run(fraction: float = 0.1, batch: int = 128, chunk: int = 1024) -> dict:
    ours = peak_rss_of(_OURS.format(chunk=chunk))
    straight = peak_rss_of(_STRAIGHT.format(fraction=fraction, batch=batch))
    return {"ours_s": ours["wall_s"], "ours_peak_bytes": ours["peak_rss_bytes"],
            "straight_s": straight["wall_s"], "straight_peak_bytes": straight["peak_rss_bytes"],
            "straight_rows": straight["rows"], "speedup": straight["wall_s"] / ours["wall_s"],
            "ours_mi": ours["mi"], "ours_md": ours["md"], "straight_mi": straight["mi"],
            "straight_md": straight["md"], "fraction": fraction, "batch": batch}
