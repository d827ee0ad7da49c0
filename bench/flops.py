"""FLOP and byte accounting of the pipeline, derived from the model configuration.

A linear layer y = x W^T + b with x (B, in) and W (out, in) costs 2·B·in·out FLOPs forward,
the same again for its weight gradient δ^T x, and the same again for its input gradient δ W
when one is needed. Elementwise work (activations, softmax, Adam) is counted in bytes, not
FLOPs. ``python -m bench.flops`` prints the per-configuration table of docs/performance.md and
the H100 projection of the paper profile.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from vaeas.config import ModelConfig

#: (training samples, test samples, pixels) of the data sets (§5.1; Omniglot = Burda et al.'s).
DATA_SIZES = {"mnist": (55_000, 10_000, 784), "omniglot": (24_345, 8_070, 784), "digits": (1_247, 360, 64)}
#: Bytes per parameter of a fused Adam step: read p, g, m, v and write p, m, v (float32).
ADAM_BYTES_PER_PARAM = 7 * 4


@dataclass(frozen=True)
class MatMul:
    """``count`` products (m, k) @ (k, n); ``layout`` as in :func:`bench.common.mm_time`."""

    name: str
    m: int
    k: int
    n: int
    layout: str
    count: int = 1

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n * self.count


def widths(data_dim: int, cfg: ModelConfig, classes: int = 0, heads: int = 1) -> dict[str, list[int]]:
    """Layer widths of each network (docs/decisions.md D1: hidden layers of ``hidden_units``)."""
    h = cfg.hidden_units
    out = {"encoder": [data_dim] + [h] * cfg.encoder_layers + [2 * cfg.latent_dim],
           "decoder": [cfg.latent_dim] + [h] * cfg.decoder_layers + [data_dim]}
    if classes:
        out["classifier"] = [cfg.latent_dim] + [h] * cfg.classifier_layers + [classes * heads]
    return out


def parameter_count(data_dim: int, cfg: ModelConfig, classes: int = 0, heads: int = 1) -> int:
    return sum(a * b + b for w in widths(data_dim, cfg, classes, heads).values() for a, b in zip(w, w[1:]))


def training_step_matmuls(data_dim: int, cfg: ModelConfig, batch: int, classes: int = 0,
                          heads: int = 1) -> list[MatMul]:
    """The matmuls one training step cannot avoid (the roofline's FLOPs).

    Encoder: forward, weight gradients, input gradients except into the data. Decoder: all three
    (its input gradient reaches z). Classifier (VAE-AS): the trunk forward once; weight gradients
    of ∇SC (eq. 8); input gradients along both routes (∇SC down to the first layer's weight,
    ∇(α·MI + β·MD) down to z: docs/decisions.md D9); the output layer's two input gradients are
    one (2B, V) @ (V, H) product.
    """
    w = widths(data_dim, cfg, classes, heads)
    out: list[MatMul] = []
    for net, dims in w.items():
        layers = list(zip(dims, dims[1:]))
        for i, (fin, fout) in enumerate(layers):
            tag = f"{net}[{i}] {fin}->{fout}"
            out.append(MatMul(f"{tag} fwd", batch, fin, fout, "nt"))
            out.append(MatMul(f"{tag} dW", fout, batch, fin, "tn"))
            if net == "encoder" and i == 0:
                continue                                   # no gradient into the data
            if net != "classifier":
                out.append(MatMul(f"{tag} dx", batch, fout, fin, "nn"))
            elif i == len(layers) - 1:
                out.append(MatMul(f"{tag} dx (both routes)", 2 * batch, fout, fin, "nn"))
            else:
                routes = 1 if i == 0 else 2               # ∇SC stops at the first layer's weight
                out.append(MatMul(f"{tag} dx", batch, fout, fin, "nn", count=routes))
    return out


def step_flops(data_dim: int, cfg: ModelConfig, batch: int, classes: int = 0, heads: int = 1) -> int:
    return sum(m.flops for m in training_step_matmuls(data_dim, cfg, batch, classes, heads))


def decoder_forward_flops(data_dim: int, cfg: ModelConfig) -> int:
    """FLOPs of one decoder forward for one z (the unit of the IW-NLL's cost)."""
    dims = widths(data_dim, cfg)["decoder"]
    return sum(2 * a * b for a, b in zip(dims, dims[1:]))


def encoder_forward_flops(data_dim: int, cfg: ModelConfig) -> int:
    dims = widths(data_dim, cfg)["encoder"]
    return sum(2 * a * b for a, b in zip(dims, dims[1:]))


def classifier_forward_flops(cfg: ModelConfig, classes: int, heads: int = 1) -> int:
    dims = [cfg.latent_dim] + [cfg.hidden_units] * cfg.classifier_layers + [classes * heads]
    return sum(2 * a * b for a, b in zip(dims, dims[1:]))


def mc_flops(size: int, latent: int) -> int:
    """log q̄ over S posteriors at S points: two (S, D) @ (D, S) products (float64)."""
    return 2 * 2 * size * size * latent


# --------------------------------------------------------------------------------------------
# The paper profile, run by run
# --------------------------------------------------------------------------------------------
@dataclass
class RunBudget:
    run: str
    dataset: str
    objective: str
    classes: int
    epochs: int
    batch: int
    steps_per_epoch: int
    params: int
    step_gflop: float
    train_pflop: float
    adam_tb: float
    eval_pflop: float
    mc_pflop: float
    group: str = ""          # runs with the same group could be trained stacked (train_many, gone: D32)


def paper_budget(profile: str = "paper") -> list[RunBudget]:
    """Training and evaluation FLOPs of every run of ``profile`` (one seed)."""
    from vaeas import experiments
    from vaeas.experiments import load_config

    cfg = load_config(profile=profile)
    out = []
    for run in experiments.runs(cfg):
        rc = experiments.config_for(cfg, run)
        n_train, n_test, pixels = DATA_SIZES[run.dataset]
        classes, heads = 0, 1
        if run.objective == "vaeas":
            lab = rc.labels
            classes = n_train if lab.scheme == "full" else lab.classes
            heads = lab.heads if lab.scheme == "multihead" else 1
        batch, epochs = rc.training.batch_size, rc.training.epochs
        steps = math.ceil(n_train / batch)
        sf = step_flops(pixels, rc.model, batch, classes, heads)
        params = parameter_count(pixels, rc.model, classes, heads)
        ev = rc.evaluation
        n_iw = n_test if ev.iw_max_examples == 0 else min(n_test, ev.iw_max_examples)
        eval_flops = (n_iw * ev.iw_samples * decoder_forward_flops(pixels, rc.model)
                      + (n_train + n_test) * encoder_forward_flops(pixels, rc.model)
                      + n_train * decoder_forward_flops(pixels, rc.model)
                      + (n_train * classifier_forward_flops(rc.model, classes, heads) if classes else 0))
        mc = (sum(mc_flops(s, rc.model.latent_dim) for s in ev.mc_sizes) * ev.mc_repeats
              if run.monte_carlo else 0)
        group = repr((run.dataset, run.objective, rc.model, rc.labels, rc.training))
        out.append(RunBudget(run.id, run.dataset, run.objective, classes * heads, epochs, batch, steps,
                             params, sf / 1e9, sf * steps * epochs / 1e15,
                             ADAM_BYTES_PER_PARAM * params * steps * epochs / 1e12,
                             eval_flops / 1e15, mc / 1e15, group))
    return out


#: H100 SXM figures used by the projection (NVIDIA datasheet, dense): TF32 tensor-core
#: 495 TFLOP/s, FP32 67 TFLOP/s, FP64 tensor-core 67 TFLOP/s, HBM3 3.35 TB/s.
H100 = {"tf32": 495e12, "fp32": 67e12, "fp64": 67e12, "hbm": 3.35e12}
#: Kernels per training step (``python -m bench.kernels``: compute ops of one step of train()'s
#: loop, counted with torch.profiler on CPU), and a conservative count of the extra ones per
#: stacked run (its own binarization, ε and index draws; measured: 24 for 11 extra runs).
#: Eager PyTorch costs the host about 5 µs per kernel launch. Objectives without a classifier
#: (β-VAE, free bits, KL annealing) run the VAE's kernels.
KERNELS_PER_STEP = {"vaeas": 284, "vae": 167}
KERNELS_PER_EXTRA_RUN = 4
LAUNCH_S = 5e-6


def projection(budget: list[RunBudget], matmul_efficiency: float = 0.35, hbm_efficiency: float = 0.7,
               precision: str = "tf32", stacked: bool = True) -> dict:
    """Seconds on one H100 for the whole profile.

    Runs of one group (same data, objective and configuration but α, β) train together when
    ``stacked``, as ``train_many`` did (removed for want of a CPU gain, docs/decisions.md D32;
    restore it from commit 35bfe9a if a GPU measurement shows this projection's gain). A group's step costs the GPU its matmul FLOPs at
    ``matmul_efficiency`` of peak plus its Adam bytes at ``hbm_efficiency`` of HBM bandwidth, and
    costs the host its kernel launches; the step takes the larger (launches overlap GPU work, no
    host sync per step). ``serial_s``: groups one after another; ``concurrent_s``: groups as
    concurrent processes on the one GPU (e.g. CUDA MPS), bounded by the GPU's busy time and by
    the longest group.
    """
    rate = H100[precision] * matmul_efficiency
    hbm = H100["hbm"] * hbm_efficiency
    groups: dict[str, list[RunBudget]] = {}
    for b in budget:
        groups.setdefault(b.group if stacked else b.run, []).append(b)
    walls, gpu_busy, rows = [], 0.0, []
    for runs in groups.values():
        b0 = runs[0]
        steps = b0.steps_per_epoch * b0.epochs
        gpu_step = sum(r.step_gflop * 1e9 / rate + ADAM_BYTES_PER_PARAM * r.params / hbm for r in runs)
        host_step = (KERNELS_PER_STEP["vaeas" if b0.classes else "vae"] + KERNELS_PER_EXTRA_RUN * (len(runs) - 1)) * LAUNCH_S
        walls.append(steps * max(gpu_step, host_step))
        gpu_busy += steps * gpu_step
        rows.append((len(runs), b0.run, steps, gpu_step, host_step))
    eval_s = sum(b.eval_pflop for b in budget) * 1e15 / rate
    mc_s = sum(b.mc_pflop for b in budget) * 1e15 / (H100["fp64"] * matmul_efficiency)
    serial = sum(walls) + eval_s + mc_s
    concurrent = max(gpu_busy, max(walls)) + eval_s + mc_s
    return {"rate": rate, "groups": rows, "train_serial_s": sum(walls), "gpu_busy_s": gpu_busy,
            "eval_s": eval_s, "mc_s": mc_s, "serial_s": serial, "concurrent_s": concurrent}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="paper")
    p.add_argument("--efficiency", type=float, default=0.35, help="fraction of the H100's peak matmul rate")
    p.add_argument("--precision", default="tf32", choices=["tf32", "fp32"])
    args = p.parse_args(argv)
    budget = paper_budget(args.profile)
    print(f"| run | data | classes | epochs × steps | params (M) | GFLOP/step | TFLOP/epoch | train PFLOP | Adam TB | eval PFLOP | MC PFLOP |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for b in budget:
        print(f"| {b.run} | {b.dataset} | {b.classes:,} | {b.epochs} × {b.steps_per_epoch} | {b.params / 1e6:.2f} | "
              f"{b.step_gflop:.2f} | {b.step_gflop * b.steps_per_epoch / 1e3:.2f} | {b.train_pflop:.3f} | "
              f"{b.adam_tb:.1f} | {b.eval_pflop:.3f} | {b.mc_pflop:.4f} |")
    tot = lambda f: sum(getattr(b, f) for b in budget)
    print(f"| **total ({len(budget)} runs)** | | | | | | | {tot('train_pflop'):.2f} | {tot('adam_tb'):.0f} | "
          f"{tot('eval_pflop'):.2f} | {tot('mc_pflop'):.3f} |")
    for stacked in (False, True):
        proj = projection(budget, args.efficiency, precision=args.precision, stacked=stacked)
        print(f"\nH100, {args.precision} at {args.efficiency:.0%} of peak ({proj['rate'] / 1e12:.0f} TFLOP/s), Adam at 70% "
              f"of 3.35 TB/s, {LAUNCH_S * 1e6:.0f} µs per kernel launch, "
              f"{'stacked groups (train_many, removed: D32)' if stacked else 'one run per process'}:")
        if stacked:
            for n, first, steps, gpu, host in proj["groups"]:
                print(f"  {n:2d} x {first:18s} {steps:7,d} steps x max(GPU {gpu * 1e3:.2f} ms, host {host * 1e3:.2f} ms)"
                      f" = {steps * max(gpu, host):6.0f} s")
        print(f"  training {proj['train_serial_s']:.0f} s one after another (GPU busy {proj['gpu_busy_s']:.0f} s), "
              f"evaluation {proj['eval_s']:.0f} s, Monte Carlo {proj['mc_s']:.0f} s")
        print(f"  total: {proj['serial_s'] / 60:.1f} min serial, {proj['concurrent_s'] / 60:.1f} min with the groups "
              f"as concurrent processes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
