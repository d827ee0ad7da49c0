"""The training loop: one function, :func:`_fit`, readable top to bottom (nanoGPT style), that
both :func:`train` (one run) and :func:`train_many` (K runs stacked) call. Per step:

1. dynamically binarize the batch (x ~ Bernoulli(intensity), redrawn every time a sample is seen);
2. encode, reparameterise one z per sample, decode, classify z (:func:`.objective.loss_terms`);
3. one backward pass routes eq. 3's gradient to θ, φ and eq. 8's to ω (:func:`.objective.backward`);
4. one fused Adam step.

The VAE baseline is the same encoder/decoder trained on the negative ELBO, recon + KL.

Every random draw (initialisation, shuffling, binarization, ε) comes from generators seeded by the
run's seed whose states are checkpointed each epoch, so an interrupted run resumed from its last
checkpoint ends bitwise equal to an uninterrupted one on CPU.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch

from .. import data
from ..config import Config
from ..errors import VaeasError
from ..models import VAE, LabelSpec, StackedVAE, make_labels
from ..monitoring import monitor_row, monitor_subset
from ..runtime import autocast_context, binarize, eval_binarized, resolve_device, tune_allocator
from .checkpoint import (
    CHECKPOINT_FORMAT,
    MODEL_FORMAT,
    load_checkpoint,
    run_fingerprint,
    save_atomic,
    stack_optimizer_states,
    unstack_optimizer_state,
    write_log_csv,
)
from .objective import LOGGED, RunSpec, StackedSpec, backward, loss_terms, standard_normal


def build_model(cfg: Config, spec: RunSpec, data_dim: int, label_spec: LabelSpec | None) -> VAE:
    torch.manual_seed(spec.seed)
    if spec.objective == "vae":
        return VAE(data_dim, cfg.model)
    return VAE(data_dim, cfg.model, classes=label_spec.classes, heads=label_spec.heads)


def make_optimizer(model: VAE, cfg: Config) -> torch.optim.Adam:
    """Adam over θ, φ and ω (D11), as one fused kernel per step (CPU and CUDA): one read and
    write of each parameter and its two moments instead of a dozen elementwise passes."""
    return torch.optim.Adam([
        {"params": model.vae_parameters(), "lr": cfg.training.lr},
        {"params": model.classifier_parameters(), "lr": cfg.training.classifier_lr},
    ], fused=True)


def _prepare(cfg: Config, spec: RunSpec):
    """What every training needs before its first step, shared by train and train_many: the
    device (thread and TF32 settings applied), the data set, and the fixed labels (V < N
    checked before any compute)."""
    device = resolve_device(cfg.training.device)
    dataset = data.load(spec.dataset, cfg.data)
    n_train = dataset.train_x.shape[0]
    label_spec = None
    if spec.objective == "vaeas":
        if cfg.labels.scheme != "full" and cfg.labels.classes >= n_train:
            raise VaeasError(f"labels.classes ({cfg.labels.classes}) must be < the {n_train} training samples of '{spec.dataset}' for scheme '{cfg.labels.scheme}'")
        label_spec = make_labels(n_train, cfg.labels)
    if cfg.training.threads:
        torch.set_num_threads(cfg.training.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.training.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = cfg.training.precision == "tf32"
    return device, dataset, label_spec


def train(cfg: Config, spec: RunSpec, out: str | Path, progress: bool = True,
          stop_after_epoch: int | None = None) -> Path:
    """Train one configuration; write the final model to ``out``.

    A checkpoint ``<out>.ckpt`` and the per-epoch log ``<out stem>.log.csv`` sit beside ``out``;
    a rerun of the same command resumes from the checkpoint. ``stop_after_epoch`` ends the run
    early (leaving the checkpoint), as an interruption would: used by tests. Returns ``out``, or
    the checkpoint's path when stopped early.
    """
    spec.validate()
    return _fit(cfg, [spec], [out], progress, stop_after_epoch, stacked=False)[0]


def train_many(cfg: Config, specs: list[RunSpec], outs: list[str | Path], progress: bool = True,
               stop_after_epoch: int | None = None) -> list[Path]:
    """Train K configurations at once, as one :class:`~vaeas.models.StackedVAE`.

    The runs must share the data set, the objective and ``cfg`` (they differ in α, β and seed,
    as Tables 2 and 3's sweeps do). Each run draws its initialisation, shuffling, binarization
    and ε from its own seed exactly as :func:`train` does, and writes the same files (model,
    checkpoint and log, in the same formats), so the result is that of K separate runs up to
    float rounding (batched matmuls round differently from single ones): see
    ``tests/test_training.py``. Checkpoints are interchangeable with :func:`train`'s; the group
    resumes when every run has a checkpoint of the same epoch, else starts afresh.

    Why: one MLP VAE is far too small to fill a GPU (kernel-launch bound, docs/performance.md);
    K stacked models run the same number of kernels with K times the work each.
    """
    if not specs or len(specs) != len(outs):
        raise VaeasError("train_many: give one output path per configuration")
    for spec in specs:
        spec.validate()
    if len({(s.dataset, s.objective) for s in specs}) != 1:
        raise VaeasError("train_many: the configurations must share the data set and the objective")
    return _fit(cfg, specs, outs, progress, stop_after_epoch, stacked=True)


def _fit(cfg: Config, specs: list[RunSpec], outs: list[str | Path], progress: bool,
         stop_after_epoch: int | None, stacked: bool) -> list[Path]:
    """The loop. ``stacked=False`` (one run) trains a plain :class:`~vaeas.models.VAE` with the
    run's generator; ``stacked=True`` trains K runs as one StackedVAE, one generator each. Either
    way every per-run quantity below is indexed by k, and the files are the same."""
    tune_allocator()
    spec0, k_runs = specs[0], len(specs)
    outs = [Path(o) for o in outs]
    ckpt_paths = [o.with_name(o.name + ".ckpt") for o in outs]
    log_paths = [o.with_name(o.stem + ".log.csv") for o in outs]
    device, dataset, label_spec = _prepare(cfg, spec0)
    n_train, data_dim = dataset.train_x.shape
    fingerprints = [run_fingerprint(cfg, s) for s in specs]

    models = [build_model(cfg, s, data_dim, label_spec) for s in specs]
    generators = [torch.Generator(device=device).manual_seed(s.seed) for s in specs]
    histories: list[list[dict]] = [[] for _ in specs]
    start_epoch = 0
    ckpts = [load_checkpoint(p, f) for p, f in zip(ckpt_paths, fingerprints)]
    resume = all(c is not None for c in ckpts) and len({c["epoch"] for c in ckpts}) == 1
    if resume:
        for one, gen, c in zip(models, generators, ckpts):
            one.load_state_dict(c["model"])
            gen.set_state(c["generator"])
        histories, start_epoch = [c["history"] for c in ckpts], ckpts[0]["epoch"]
    elif any(c is not None for c in ckpts):
        print("vaeas: the group's checkpoints are not all of one epoch; starting every run from scratch")
    model = StackedVAE(models).to(device) if stacked else models[0].to(device)
    del models
    optimizer = make_optimizer(model, cfg)
    if resume:
        optimizer.load_state_dict(stack_optimizer_states([c["optimizer"] for c in ckpts]) if stacked
                                  else ckpts[0]["optimizer"])
    state_of = model.state_dict_of if stacked else lambda k: model.state_dict()
    optimizer_state_of = ((lambda k: unstack_optimizer_state(optimizer.state_dict(), k)) if stacked
                          else lambda k: optimizer.state_dict())
    # What goes to loss_terms: K runs' α, β as tensors and one generator each, or the run itself.
    objective = (StackedSpec(spec0.objective, torch.tensor([s.alpha for s in specs], device=device),
                             torch.tensor([s.beta for s in specs], device=device)) if stacked else spec0)
    noise = generators if stacked else generators[0]

    train_x = dataset.train_x.to(device)
    labels = label_spec.labels.to(device) if label_spec is not None else None
    batch = cfg.training.batch_size
    steps = math.ceil(n_train / batch)
    params_vae, params_cls = model.vae_parameters(), model.classifier_parameters()
    last_epoch = cfg.training.epochs if stop_after_epoch is None else min(stop_after_epoch, cfg.training.epochs)
    step_weights = torch.tensor([min(batch, n_train - s * batch) / n_train for s in range(steps)],
                                device=device, dtype=torch.float64)
    monitor = _monitor(cfg, dataset, label_spec, device) if cfg.training.monitor_every else None
    _unstacked = lambda m, k, spec: _one_model(cfg, spec, data_dim, label_spec, m.state_dict_of(k), device)
    whose = (lambda k: f" of {_describe(specs[k])}") if stacked else (lambda k: "")
    kept = "the last good checkpoints are kept" if stacked else f"the last good checkpoint {ckpt_paths[0]} is kept"

    from tqdm.auto import tqdm

    desc = (f"train {k_runs} x {spec0.dataset} {spec0.objective}" if stacked else
            f"train {spec0.dataset} {spec0.objective} a={spec0.alpha:g} b={spec0.beta:g} s={spec0.seed}")
    bar = tqdm(range(start_epoch, last_epoch), initial=start_epoch, total=cfg.training.epochs,
               desc=desc, disable=not progress, unit="epoch")
    for epoch in bar:
        t0 = time.perf_counter()
        perms = [torch.randperm(n_train, generator=g, device=device) for g in generators]
        logged = torch.empty((steps, k_runs, len(LOGGED)), device=device, dtype=torch.float64)
        for step in range(steps):
            idx = [perm[step * batch:(step + 1) * batch] for perm in perms]
            x = [binarize(train_x[i], g) for i, g in zip(idx, generators)]
            y = None if labels is None else [labels[i] for i in idx]
            if stacked:
                x, y = torch.stack(x), None if y is None else torch.stack(y)       # (K, B, P), (K, B[, heads])
            else:
                x, y = x[0], None if y is None else y[0]
            with autocast_context(device, cfg.training.precision):
                terms = loss_terms(model, x, y, objective, label_spec, noise)
            optimizer.zero_grad(set_to_none=True)
            backward(terms, params_vae, params_cls)
            optimizer.step()
            for _ in range(cfg.training.classifier_steps if params_cls else 0):
                classifier_step(model, x, y, noise, optimizer, params_cls)
            logged[step] = torch.stack([getattr(terms, k).detach().double() for k in LOGGED], -1)  # no host sync
        # The one host sync of the epoch (docs/performance.md): a non-finite loss stops the run,
        # naming the first step where it appeared; the checkpoint of the last good epoch is kept.
        bad = torch.nonzero(~torch.isfinite(logged[:, :, 0])).tolist()          # (step, run), step-major
        if bad:
            step, k = bad[0]
            raise VaeasError(f"non-finite loss ({logged[step, k, 0].item()}){whose(k)} at epoch {epoch + 1}, step {step + 1}; {kept}")
        means = (step_weights @ logged.flatten(1)).view(k_runs, len(LOGGED)).tolist()   # per-sample means
        seconds = round(time.perf_counter() - t0, 3)
        finite = _finite_parameters(model, stacked)
        if not all(finite):
            raise VaeasError(f"non-finite parameters{whose(finite.index(False))} after epoch {epoch + 1}, step {steps} (its last); {kept}")
        for k in range(k_runs):
            histories[k].append({"epoch": epoch + 1, **dict(zip(LOGGED, means[k])), "seconds": seconds})
        if monitor is not None and (epoch + 1) % cfg.training.monitor_every == 0:
            for k in range(k_runs):
                histories[k][-1].update(monitor(model if not stacked else _unstacked(model, k, specs[k])))
        bar.set_postfix(loss=" ".join(f"{h[-1]['loss']:.2f}" for h in histories),
                        **({} if stacked else {"kl": f"{histories[0][-1]['kl']:.2f}"}))
        if (epoch + 1) % cfg.training.checkpoint_every == 0 or epoch + 1 == last_epoch:
            for k in range(k_runs):
                save_atomic({"format": CHECKPOINT_FORMAT, "fingerprint": fingerprints[k], "epoch": epoch + 1,
                             "model": state_of(k), "optimizer": optimizer_state_of(k),
                             "generator": generators[k].get_state(), "history": histories[k]}, ckpt_paths[k])
                write_log_csv(histories[k], log_paths[k])
    bar.close()
    if last_epoch < cfg.training.epochs:
        return ckpt_paths
    for k in range(k_runs):
        write_log_csv(histories[k], log_paths[k])
        save_atomic({"format": MODEL_FORMAT, "fingerprint": fingerprints[k], "spec": dataclasses.asdict(specs[k]),
                     "config": cfg.to_dict(), "data_dim": data_dim, "image_shape": list(dataset.image_shape),
                     "labels": None if label_spec is None else {"classes": label_spec.classes, "heads": label_spec.heads},
                     "model": {n: v.cpu() for n, v in state_of(k).items()}, "history": histories[k]}, outs[k])
        ckpt_paths[k].unlink(missing_ok=True)
    return outs


def classifier_step(model, x: torch.Tensor, y: torch.Tensor, noise, optimizer: torch.optim.Adam,
                    params_cls: list) -> None:
    """One extra update of ω alone (eq. 8) on fresh z ~ q(z|x) of the batch, the encoder held
    fixed (``training.classifier_steps``, D23): lets s_ω track a moving encoder. θ, φ get no
    gradient, so Adam leaves them, and their moments, untouched."""
    with torch.no_grad():
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * standard_normal(mu, noise)
    sc = model.classifier.routed_statistics(z, y)[2]
    optimizer.zero_grad(set_to_none=True)
    torch.autograd.backward(sc.sum(), inputs=params_cls)
    optimizer.step()


def _monitor(cfg: Config, dataset, label_spec: LabelSpec | None, device: torch.device):
    """The per-epoch monitor of ``training.monitor_every`` (vaeas.monitoring): a function of a
    model returning its ``mon_*`` columns, on a fixed seeded, evaluation-binarized subset."""
    seed = cfg.evaluation.binarize_seed + 4
    idx = monitor_subset(dataset.train_x.shape[0], cfg.training.monitor_size, seed)
    x = eval_binarized(dataset.train_x[idx], cfg.evaluation.binarize_seed).to(device)
    labels = None if label_spec is None else label_spec.labels[idx].to(device)
    n_eff = dataset.train_x.shape[0] if label_spec is None else label_spec.effective_count
    md_count = None if label_spec is None else label_spec.marginal_count
    return lambda model: monitor_row(model, x, labels, n_eff, seed, cfg.evaluation.mc_chunk, md_count)


def _one_model(cfg: Config, spec: RunSpec, data_dim: int, label_spec, state: dict, device) -> VAE:
    """Run k of a stack as a plain VAE (for monitoring), without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        one = build_model(cfg, spec, data_dim, label_spec)
    one.load_state_dict(state)
    return one.to(device)


def _describe(spec: RunSpec) -> str:
    return f"{spec.dataset} {spec.objective} alpha={spec.alpha:g} beta={spec.beta:g} seed={spec.seed}"


def _finite_parameters(model: VAE | StackedVAE, stacked: bool) -> list[bool]:
    """Per run: are all its weights finite? (One sum per parameter tensor, one host sync.)"""
    if stacked:
        return torch.stack([p.detach().flatten(1).sum(1) for p in model.parameters()]).isfinite().all(0).tolist()
    return [bool(torch.stack([p.detach().sum() for p in model.parameters()]).isfinite().all())]
