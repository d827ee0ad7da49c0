"""Subnormal Adam state: the training step with and without flush-to-zero (D50).

Late in a VAE-AS run at large N, Adam's moments of the classifier's output layer fall below
float32's smallest normal value 2^-126 (the gradient of a class the classifier has learnt is
p_j - y_j ~ 0, so the second moment decays as β2^t). x86 CPUs compute on subnormals through a
slow micro-coded path; ``training.flush_denormal`` (torch.set_flush_denormal) turns it off.

This bench builds the step of ``bench.step`` at a profile's shapes and N, moves a share of the
output layer's Adam moments into the subnormal range (as a long run leaves them), and times the
step with flush-to-zero off and on, interleaved, in the same process:

    .venv/bin/python -m bench.denormal                     # mnist-cpu shapes, N = 10,000
    .venv/bin/python -m bench.denormal --classes 3000 --share 0.9

One thread: flush-to-zero is a per-thread register that torch's worker threads copy when they
start (vaeas.runtime.set_flush_denormal), so switching it on and off in one process reaches
only the thread that switches it.

It also takes one step from the same state both ways and reports the largest change flushing
made to any parameter: the argument of D50 is that it changes nothing above 2^-126 in one op.
"""

from __future__ import annotations

import argparse
import copy

import torch

from vaeas.runtime import set_flush_denormal

from .common import fmt_s, load_average, machine, time_fn
from .step import make_step, setup

TINY = torch.finfo(torch.float32).tiny          # 2^-126, the smallest normal float32


def subnormal_count(optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    """(subnormal entries, all entries) over the optimizer's moment tensors."""
    sub = total = 0
    for state in optimizer.state.values():
        for key in ("exp_avg", "exp_avg_sq"):
            t = state[key]
            sub += int(((t != 0) & (t.abs() < TINY)).sum())
            total += t.numel()
    return sub, total


def make_subnormal(optimizer: torch.optim.Optimizer, param: torch.Tensor, share: float, seed: int = 0) -> None:
    """Scale a ``share`` of ``param``'s Adam moments into [2^-149, 2^-126): the state a class the
    classifier has learnt leaves behind after ~10^5 steps of β2 = 0.999 decay."""
    gen = torch.Generator().manual_seed(seed)
    state = optimizer.state[param]
    mask = torch.rand(param.shape, generator=gen) < share
    for key in ("exp_avg", "exp_avg_sq"):
        t = state[key]
        sub = torch.rand(param.shape, generator=gen) * (TINY - 2.0 ** -149) + 2.0 ** -149
        t[mask] = (sub * torch.where(t >= 0, 1.0, -1.0))[mask]


def _flush(on: bool) -> None:
    """The setting on every thread, or no measurement (vaeas.runtime.set_flush_denormal's probe)."""
    if not set_flush_denormal(on):
        raise RuntimeError(f"flush-to-zero {'on' if on else 'off'} does not hold on every torch thread "
                           "(run the bench in a fresh process with one thread)")


def run(profile: str = "mnist-cpu", classes: int = 10_000, share: float = 0.9, repeats: int = 10,
        rounds: int = 3) -> dict:
    from vaeas.experiments import load_config

    model_cfg = load_config("params.yaml", profile=profile).model
    cfg, model, label_spec, x, labels, gen = setup(n_train=classes, model=model_cfg)
    step = make_step(cfg, model, label_spec, x, labels, gen)
    for _ in range(3):                       # Adam state exists after the first step
        step()
    optimizer = step.optimizer
    out_layer = max(model.classifier_parameters(), key=lambda p: p.numel())
    state0 = copy.deepcopy((model.state_dict(), optimizer.state_dict()))

    def reset():
        model.load_state_dict(state0[0])
        # a copy: Adam's load_state_dict keeps the very tensors it is given, which steps then change
        optimizer.load_state_dict(copy.deepcopy(state0[1]))
        make_subnormal(optimizer, out_layer, share)

    reset()
    sub, total = subnormal_count(optimizer)
    times = {False: float("inf"), True: float("inf")}
    try:
        for _ in range(rounds):
            for flush in (False, True):
                reset()
                _flush(flush)
                times[flush] = min(times[flush], time_fn(step, repeats, warmup=1).best)
        # One step from the same state each way: the largest parameter change flushing makes
        after = {}
        for flush in (False, True):
            reset()
            _flush(flush)
            gen.manual_seed(1)
            step()
            after[flush] = [p.detach().clone() for p in model.parameters()]
    finally:
        torch.set_flush_denormal(False)
    diff = max(float((a - b).abs().max()) for a, b in zip(after[False], after[True]))
    return {"classes": classes, "share": share, "subnormal": sub, "moments": total, "layer": out_layer.numel(),
            "off_s": times[False], "on_s": times[True], "ratio": times[False] / times[True],
            "max_param_change": diff}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.denormal", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="mnist-cpu")
    p.add_argument("--classes", type=int, default=10_000)
    p.add_argument("--share", type=float, default=0.9, help="share of the output layer's moments made subnormal")
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if not torch.set_flush_denormal(True):
        print("this CPU has no flush-to-zero (torch.set_flush_denormal returned False): nothing to measure")
        return 1
    torch.set_flush_denormal(False)
    print(f"machine: {machine()}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in load_average())}")
    r = run(args.profile, args.classes, args.share, args.repeats)
    print(f"{args.profile} shapes, N = {r['classes']:,} classes: {r['subnormal']:,} of {r['moments']:,} Adam "
          f"moments subnormal; step {fmt_s(r['off_s'])} without flush-to-zero, {fmt_s(r['on_s'])} with "
          f"({r['ratio']:.2f}x); largest parameter change flushing made in one step: {r['max_param_change']:.3g}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in load_average())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
