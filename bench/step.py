"""Benchmark 1: one training step at the paper's MNIST shapes (or a profile's, with N classes)
against its roofline floor.

Floor = Σ over the step's unavoidable matmuls (bench.flops.training_step_matmuls) of the time
torch.mm takes at that exact shape and layout on this machine, + the fused Adam's bytes
(28 per parameter) at this machine's memory-copy bandwidth. The step is what
``vaeas.training.train`` runs per batch: binarize, loss_terms, zero_grad, backward, Adam, log.
"""

from __future__ import annotations

import math

import torch

from vaeas.config import Config, LabelConfig, ModelConfig, TrainingConfig
from vaeas.models import VAE, make_labels
from vaeas.training import LOGGED, RunSpec, autocast_context, backward, binarize, loss_terms, make_optimizer

from . import naive
from .common import copy_bandwidth, mm_time, time_fn
from .flops import ADAM_BYTES_PER_PARAM, parameter_count, training_step_matmuls

N_TRAIN, PIXELS = 55_000, 784


def setup(batch: int = 128, seed: int = 0, device="cpu", precision="fp32", n_train: int = N_TRAIN,
          model: ModelConfig | None = None):
    """The step's inputs. ``n_train``: the classifier's classes (one label per training image);
    ``model``: the MLP's configuration (default: the paper's, §5.3)."""
    # "bf16w": weights, Adam's moments and the batch held in bf16, no autocast (the lever of
    # issue 19 item 3 "bf16 with weights kept in bf16"; a bench lever, not a training option).
    weights_bf16 = precision == "bf16w"
    cfg = Config(model=model or ModelConfig(), labels=LabelConfig(),
                 training=TrainingConfig(batch_size=batch, device=str(device), precision="fp32" if weights_bf16 else precision))
    label_spec = make_labels(n_train, cfg.labels)
    torch.manual_seed(seed)
    model = VAE(PIXELS, cfg.model, classes=label_spec.classes, heads=label_spec.heads).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.rand(batch, PIXELS, generator=gen, device=device)
    if weights_bf16:
        model, x = model.to(torch.bfloat16), x.to(torch.bfloat16)
    labels = label_spec.labels[torch.arange(batch) % n_train].to(device)   # N may be below the batch
    return cfg, model, label_spec, x, labels, gen


def make_step(cfg, model, label_spec, x, labels, gen):
    """The body of train()'s inner loop, as a closure."""
    spec = RunSpec("mnist", "vaeas", {"alpha": 1.0, "beta": 1.0})
    optimizer = make_optimizer(model, cfg)
    params_vae, params_cls = model.vae_parameters(), model.classifier_parameters()
    logged = torch.empty((1, len(LOGGED)), dtype=torch.float64, device=x.device)
    device = x.device

    def step():
        xb = binarize(x, gen)
        with autocast_context(device, cfg.training.precision):
            terms = loss_terms(model, xb, labels, spec, label_spec, gen)
        optimizer.zero_grad(set_to_none=True)
        backward(terms, params_vae, params_cls)
        optimizer.step()
        logged[0] = torch.stack([getattr(terms, k).detach().double() for k in LOGGED])
    step.optimizer = optimizer          # for benches that reach into Adam's state (bench.denormal)
    return step


def floor_seconds(cfg: Config, batch: int, repeats: int, device="cpu", n_train: int = N_TRAIN) -> dict:
    mms = training_step_matmuls(PIXELS, cfg.model, batch, n_train)
    seen: dict[tuple, float] = {}
    mm_s = 0.0
    for m in mms:
        key = (m.m, m.k, m.n, m.layout)
        if key not in seen:
            seen[key] = mm_time(m.m, m.k, m.n, m.layout, repeats=repeats, device=device).best
        mm_s += seen[key] * m.count
    params = parameter_count(PIXELS, cfg.model, n_train)
    bw = copy_bandwidth(device=device)
    adam_s = ADAM_BYTES_PER_PARAM * params / bw
    flops = sum(m.flops for m in mms)
    return {"flops": flops, "matmul_s": mm_s, "adam_s": adam_s, "floor_s": mm_s + adam_s,
            "sgemm_flops_per_s": flops / mm_s, "copy_bytes_per_s": bw, "params": params}


def run(repeats: int = 5, rounds: int = 2, with_naive: bool = True, device="cpu", n_train: int = N_TRAIN,
        model_cfg: ModelConfig | None = None, batch: int = 128, precision: str = "fp32") -> dict:
    """The step (at ``precision``: fp32, bf16 autocast as ``training.precision``, or bf16w: weights
    and Adam state in bf16) against the fp32 floor, best of ``rounds`` interleaved measurements."""
    cfg, model, label_spec, x, labels, gen = setup(batch=batch, device=device, n_train=n_train, model=model_cfg,
                                                   precision=precision)
    step = make_step(cfg, model, label_spec, x, labels, gen)
    best_step, best_floor, best_naive = math.inf, None, math.inf
    naive_model = naive_opt = None
    if with_naive:
        _, naive_model, _, _, _, _ = setup(device=device)
        naive_opt = naive.naive_optimizer(naive_model)
    # Interleave floor and step measurements so that both see the same machine state.
    for _ in range(rounds):
        f = floor_seconds(cfg, x.shape[0], repeats, device, n_train)
        if best_floor is None or f["floor_s"] < best_floor["floor_s"]:
            best_floor = f
        best_step = min(best_step, time_fn(step, repeats, warmup=2, device=device).best)
        if with_naive:
            best_naive = min(best_naive, time_fn(
                lambda: naive.naive_step(naive_model, naive_opt, x, labels, 1.0, 1.0, n_train, gen),
                max(2, repeats // 2), warmup=1, device=device).best)
    out = {**best_floor, "n_train": n_train, "batch": batch, "precision": precision, "step_s": best_step, "ratio": best_step / best_floor["floor_s"],
           "achieved_flops_per_s": best_floor["flops"] / best_step}
    if with_naive:
        out.update(naive_s=best_naive, speedup_vs_naive=best_naive / best_step)
    return out
