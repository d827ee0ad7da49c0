"""Issue 19 item 3's last two levers at mnist-cpu's shapes: where the step's time goes beyond its
matmuls, Adam's traffic against its byte floor, and what hand-fused elementwise work would save.

    python -m bench.small_ops [N ...]        # N: the classifier's classes (default 1000)

One thread, process CPU time (the clock that stays honest beside other jobs). For each N:

1. ``torch.profiler`` over 20 steps: self CPU time per step in matmuls (``mm``, ``addmm``), in the
   fused Adam kernel, and in everything else (the largest of those ops named), and the fused Adam's
   time against its floor (28 bytes per parameter at this machine's copy bandwidth, as
   ``bench.step.floor_seconds`` counts it).
2. Each lever's own op, alone (best of 5 × 200 calls): binarizing a 128 × 784 batch, and the
   likelihood's forward and backward at those shapes. This bounds what the lever can save a step.
3. The whole step with each lever, best of 5 rounds × 20 steps, the variants interleaved round by
   round so that they see the same machine:

   * ``eager``: the step ``vaeas.training.train`` runs (bench.step.make_step);
   * ``binarize``: dynamic binarization as ``(uniform < x)`` instead of ``torch.bernoulli`` (the
     same distribution, another random stream: adopting it changes every trained model);
   * ``likelihood``: the Bernoulli log-likelihood x·l − softplus(l) as one autograd Function
     whose backward is (x − σ(l))·g (one kernel chain instead of autograd's four nodes);
   * ``both``.

   Before timing, the ``likelihood`` lever's loss and gradients are checked against the eager
   step's on the same batch (a lever that computes something else is not a lever).

Result in docs/performance.md §1b.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

import vaeas.metrics as metrics
from vaeas.config import ModelConfig

from . import step as bench_step
from .common import copy_bandwidth
from .flops import ADAM_BYTES_PER_PARAM

MODEL = dict(activation="relu", init="glorot", decoder_layers=5)        # mnist-cpu's MLP
MATMULS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}


class _FusedBernoulliLL(torch.autograd.Function):
    """Σ_p x_p·l_p − softplus(l_p) over the last dim; d/dl = x − σ(l) (metrics.bernoulli_log_likelihood)."""

    @staticmethod
    def forward(ctx, logits, x):
        ctx.save_for_backward(logits, x)
        return (x * logits).sub_(F.softplus(logits)).sum(-1)

    @staticmethod
    def backward(ctx, grad):
        logits, x = ctx.saved_tensors
        return (x - torch.sigmoid(logits)).mul_(grad.unsqueeze(-1)), None


def fused_bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _FusedBernoulliLL.apply(logits, x.to(logits.dtype))


def uniform_binarize(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(x.shape, generator=generator, device=x.device) < x).to(x.dtype)


@contextmanager
def levers(binarize: bool, likelihood: bool):
    """Swap the step's binarization and/or likelihood for the levers' versions, then restore them."""
    saved = bench_step.binarize, metrics.bernoulli_log_likelihood
    if binarize:
        bench_step.binarize = uniform_binarize
    if likelihood:
        metrics.bernoulli_log_likelihood = fused_bernoulli_log_likelihood
    try:
        yield
    finally:
        bench_step.binarize, metrics.bernoulli_log_likelihood = saved


VARIANTS = {"eager": (False, False), "binarize": (True, False), "likelihood": (False, True), "both": (True, True)}


def check_likelihood(n: int) -> float:
    """Largest relative difference of the loss and of any gradient between eager and the fused
    likelihood, same weights and batch; raises if it exceeds float32 rounding of the sums."""
    grads = {}
    for name, (_, fused) in (("eager", VARIANTS["eager"]), ("likelihood", VARIANTS["likelihood"])):
        cfg, model, label_spec, x, labels, gen = bench_step.setup(batch=128, n_train=n, model=ModelConfig(**MODEL))
        xb = bench_step.binarize(x, torch.Generator().manual_seed(1))
        with levers(False, fused):
            terms = bench_step.loss_terms(model, xb, labels, bench_step.RunSpec("mnist", "vaeas", {"alpha": 1.0, "beta": 1.0}),
                                          label_spec, torch.Generator().manual_seed(2))
        terms.loss.backward()
        grads[name] = [terms.loss.detach()] + [p.grad.clone() for p in model.vae_parameters()]
    worst = 0.0
    for a, b in zip(grads["eager"], grads["likelihood"]):
        scale = a.abs().max().clamp_min(1e-30)
        worst = max(worst, float((a - b).abs().max() / scale))
    # Each output is a sum of ≤ 784 × 128 float32 terms of either sign: allow 1e-4 relative to its
    # largest entry (784 × 128 × 2^-24 ≈ 6e-3 is the worst case; we see ~1e-6).
    if worst > 1e-4:
        raise AssertionError(f"fused likelihood differs from eager by {worst:.2e} (relative)")
    return worst


def breakdown(n: int, steps: int = 20) -> dict:
    cfg, model, label_spec, x, labels, gen = bench_step.setup(batch=128, n_train=n, model=ModelConfig(**MODEL))
    step = bench_step.make_step(cfg, model, label_spec, x, labels, gen)
    for _ in range(5):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    rows = [(e.key, e.self_cpu_time_total / steps / 1e3) for e in prof.key_averages()]      # ms per step
    total = sum(ms for _, ms in rows)
    mm = sum(ms for k, ms in rows if k in MATMULS)
    adam = sum(ms for k, ms in rows if k == "aten::_fused_adam_")
    rest = sorted(((k, ms) for k, ms in rows if k not in MATMULS and k != "aten::_fused_adam_"), key=lambda r: -r[1])
    params = sum(p.numel() for p in model.parameters())
    adam_floor = ADAM_BYTES_PER_PARAM * params / copy_bandwidth() * 1e3
    return {"total": total, "matmul": mm, "adam": adam, "adam_floor": adam_floor, "rest": total - mm - adam,
            "top": rest[:8]}


def timed(n: int, rounds: int = 5, steps: int = 20) -> dict:
    steppers = {}
    for name, (binarize, fused) in VARIANTS.items():
        cfg, model, label_spec, x, labels, gen = bench_step.setup(batch=128, n_train=n, model=ModelConfig(**MODEL))
        steppers[name] = (bench_step.make_step(cfg, model, label_spec, x, labels, gen), binarize, fused)
    best = {name: float("inf") for name in VARIANTS}
    for _ in range(rounds):
        for name, (step, binarize, fused) in steppers.items():
            with levers(binarize, fused):
                step()                                  # warm-up
                cpu = time.process_time()
                for _ in range(steps):
                    step()
                best[name] = min(best[name], (time.process_time() - cpu) / steps * 1e3)
    return best


def micro(repeats: int = 200) -> dict:
    """ms per call of each lever's op alone, eager against lever, at the batch's shapes."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(128, bench_step.PIXELS, generator=gen)
    xb = torch.bernoulli(x, generator=gen)
    logits = torch.randn(128, bench_step.PIXELS, generator=gen, requires_grad=True)

    def fwd_bwd(fn):
        def call():
            fn(logits, xb).mean().backward()
            logits.grad = None
        return call

    calls = {"bernoulli": lambda: torch.bernoulli(x, generator=gen), "uniform < x": lambda: uniform_binarize(x, gen),
             "likelihood eager": fwd_bwd(metrics.bernoulli_log_likelihood),
             "likelihood fused": fwd_bwd(fused_bernoulli_log_likelihood)}
    best = {k: float("inf") for k in calls}
    for _ in range(5):
        for k, call in calls.items():
            call()
            cpu = time.process_time()
            for _ in range(repeats):
                call()
            best[k] = min(best[k], (time.process_time() - cpu) / repeats * 1e3)
    return best


def main(ns: list[int]) -> None:
    torch.set_num_threads(1)
    m = micro()
    print("ops alone, ms per call (CPU clock, best of 5 × 200): " + ", ".join(f"{k} {v:.2f}" for k, v in m.items()))
    for n in ns:
        print(f"N = {n}: fused likelihood vs eager, largest relative difference {check_likelihood(n):.1e}")
        b = breakdown(n)
        print(f"N = {n}: profiler, ms per step (self CPU): total {b['total']:.1f}, matmuls {b['matmul']:.1f} "
              f"({b['matmul'] / b['total']:.0%}), fused Adam {b['adam']:.1f} (its byte floor {b['adam_floor']:.1f}: "
              f"{b['adam'] / b['adam_floor']:.2f}×), the rest {b['rest']:.1f} ({b['rest'] / b['total']:.0%})")
        print("   largest of the rest: " + ", ".join(f"{k.removeprefix('aten::')} {ms:.2f}" for k, ms in b["top"]))
        t = timed(n)
        print(f"N = {n}: step, ms (CPU clock, best of 5 × 20): " + ", ".join(
            f"{k} {v:.1f} ({v / t['eager']:.3f}×)" for k, v in t.items()))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000])
