"""One lever of issue 19 item 3: ``torch.compile`` on the objective's forward (``loss_terms``, whose
backward AOTAutograd compiles with it) at mnist-cpu's shapes, against the eager step; one thread,
process CPU time (the clock that stays honest beside other jobs).

    python -m bench.compile_lever N MODE      # MODE: eager, default, or a torch.compile mode

Prints the first three steps' time (the compilation) and the best of 5 × 20 steps. Result in
docs/performance.md §1b.
"""

from __future__ import annotations

import sys
import time

import torch

from vaeas.config import ModelConfig

from . import step as bench_step


def main(n: int, mode: str) -> None:
    torch.set_num_threads(1)
    model_cfg = ModelConfig(activation="relu", init="glorot", decoder_layers=5)       # mnist-cpu's MLP
    cfg, model, label_spec, x, labels, gen = bench_step.setup(batch=128, n_train=n, model=model_cfg)
    if mode != "eager":
        bench_step.loss_terms = torch.compile(bench_step.loss_terms, mode=None if mode == "default" else mode,
                                              dynamic=False)
    step = bench_step.make_step(cfg, model, label_spec, x, labels, gen)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(3):
        step()
    print(f"{mode} N={n}: first 3 steps (compilation) {time.process_time() - cpu:.1f} s CPU, "
          f"{time.perf_counter() - wall:.1f} s wall")
    best = float("inf")
    for _ in range(5):
        cpu = time.process_time()
        for _ in range(20):
            step()
        best = min(best, (time.process_time() - cpu) / 20)
    print(f"{mode} N={n}: step {best * 1e3:.1f} ms (CPU clock, best of 5 × 20)")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
