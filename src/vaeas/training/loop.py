"""The training loop of one run, readable top to bottom (nanoGPT style). Per step:

1. dynamically binarize the batch (x ~ Bernoulli(intensity), redrawn every time a sample is seen);
2. the run's objective on it (:func:`.step.loss_terms`: encode, reparameterise one z per sample,
   decode, and classify z when the objective has the auxiliary classifier);
3. one backward pass: θ, φ get ∇loss, ω gets ∇SC (eq. 8) (:func:`.step.backward`);
4. one fused Adam step.

At the end of an epoch: the Monte Carlo monitor (``training.monitor_every``), the validation
IW-NLL whose best epoch's model is kept (``training.validate_every``, :mod:`.validation`), and
the checkpoint.

Every random draw (initialisation, shuffling, binarization, ε) comes from a generator seeded by
the run's seed whose state is checkpointed each epoch, so an interrupted run resumed from its
last checkpoint ends bitwise equal to an uninterrupted one on the same machine.

K runs stacked into one batched model (``train_many``) lived here until commit 35bfe9a; it gave
no gain on CPU and went (docs/decisions.md D32).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch

from .. import data
from ..config import Config
from ..errors import VaeasError
from ..experiments import check_fits_dataset
from ..models import VAE, LabelSpec, make_labels
from ..monitoring import monitor_row, monitor_subset
from ..objectives import LOGGED, standard_normal
from ..progress import epoch_bar
from ..run import RunSpec
from ..runtime import (autocast_context, binarize, effective_precision, eval_binarized, resolve_device,
                       set_flush_denormal, tune_allocator)
from .checkpoint import CHECKPOINT_FORMAT, MODEL_FORMAT, VALID_COLUMN, load_checkpoint, run_record, save_atomic, write_log_csv
from .step import backward, loss_terms
from .validation import Best, Validator, is_due


def build_model(cfg: Config, spec: RunSpec, data_dim: int, label_spec: LabelSpec | None) -> VAE:
    torch.manual_seed(spec.seed)
    if label_spec is None:
        return VAE(data_dim, cfg.model)
    return VAE(data_dim, cfg.model, classes=label_spec.classes, heads=label_spec.heads)


def make_optimizer(model: VAE, cfg: Config) -> torch.optim.Adam:
    """Adam over θ, φ and ω (D11), as one fused kernel per step (CPU and CUDA): one read and
    write of each parameter and its two moments instead of a dozen elementwise passes."""
    return torch.optim.Adam([
        {"params": model.vae_parameters(), "lr": cfg.training.lr},
        {"params": model.classifier_parameters(), "lr": cfg.training.classifier_lr},
    ], fused=True)


def train(cfg: Config, spec: RunSpec, out: str | Path, progress: bool | str = True,
          stop_after_epoch: int | None = None) -> Path:
    """Train one run; write the final model to ``out``.

    A checkpoint ``<out>.ckpt`` and the per-epoch log ``<out stem>.log.csv`` sit beside ``out``;
    a rerun of the same command resumes from the checkpoint. ``progress``: a tqdm bar (True), a
    line per twentieth of the run for a job's log (``"lines"``, :mod:`vaeas.progress`) or nothing
    (False). ``stop_after_epoch`` ends the run early (leaving the checkpoint), as an interruption
    would: used by tests. Returns ``out``, or the checkpoint's path when stopped early.
    """
    # First, before anything starts torch's worker threads: they copy this thread's flush-to-zero
    # register when they start and keep it (vaeas.runtime.set_flush_denormal). Set either way, so a
    # process that trains several runs gives each its own setting; cleared on the way out.
    if cfg.training.threads:
        torch.set_num_threads(cfg.training.threads)
    flush_everywhere = set_flush_denormal(cfg.training.flush_denormal)
    try:
        return _train(cfg, spec, out, progress, stop_after_epoch, flush_everywhere)
    finally:
        torch.set_flush_denormal(False)


def _train(cfg: Config, spec: RunSpec, out: str | Path, progress, stop_after_epoch, flush_everywhere: bool) -> Path:
    tune_allocator()
    out = Path(out)
    device = resolve_device(cfg.training.device)
    dataset = data.load(spec.dataset, cfg.data)
    n_train, data_dim = dataset.train_x.shape
    check_fits_dataset(cfg, spec.dataset, source="", n=n_train, labels=spec.definition.needs_classifier)
    # The fixed labels of the auxiliary classifier (V < N checked just above).
    label_spec = make_labels(n_train, cfg.labels) if spec.definition.needs_classifier else None
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.training.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = cfg.training.precision == "tf32"
    precision, fallback = effective_precision(device, cfg.training.precision)
    if fallback:
        print(f"vaeas: {spec.describe()}: {fallback}", file=sys.stderr, flush=True)
    if not flush_everywhere:
        state = "on" if cfg.training.flush_denormal else "off"
        print(f"vaeas: {spec.describe()}: training.flush_denormal {str(cfg.training.flush_denormal).lower()}: "
              f"flush-to-zero is {state} on this thread only; torch's worker threads started before it was set "
              f"keep their own (train in a fresh process, or with training.threads 1)", file=sys.stderr, flush=True)
    ckpt_path, log_path = out.with_name(out.name + ".ckpt"), out.with_name(out.stem + ".log.csv")
    record = run_record(cfg, spec)
    model = build_model(cfg, spec, data_dim, label_spec)
    generator = torch.Generator(device=device).manual_seed(spec.seed)
    history: list[dict] = []
    start_epoch, best = 0, None
    ckpt = load_checkpoint(ckpt_path, cfg, spec)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        generator.set_state(ckpt["generator"])
        history, start_epoch, best = ckpt["history"], ckpt["epoch"], Best.from_dict(ckpt.get("best"))
    model = model.to(device)
    optimizer = make_optimizer(model, cfg)
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])

    train_x = dataset.train_x.to(device)
    labels = label_spec.labels.to(device) if label_spec is not None else None
    batch = cfg.training.batch_size
    steps = math.ceil(n_train / batch)
    params_vae, params_cls = model.vae_parameters(), model.classifier_parameters()
    last_epoch = cfg.training.epochs if stop_after_epoch is None else min(stop_after_epoch, cfg.training.epochs)
    step_weights = torch.tensor([min(batch, n_train - s * batch) / n_train for s in range(steps)],
                                device=device, dtype=torch.float64)
    monitor = _monitor(cfg, dataset, label_spec, device) if cfg.training.monitor_every else None
    validator = Validator(cfg, dataset, device, best) if cfg.training.validate_every else None
    kept = f"the last good checkpoint {ckpt_path} is kept"

    bar = epoch_bar(progress, range(start_epoch, last_epoch), start_epoch, cfg.training.epochs, f"train {spec.describe()}")
    for epoch in bar:
        t0 = time.perf_counter()
        perm = torch.randperm(n_train, generator=generator, device=device)
        logged = torch.empty((steps, len(LOGGED)), device=device, dtype=torch.float64)
        for step in range(steps):
            idx = perm[step * batch:(step + 1) * batch]
            x = binarize(train_x[idx], generator)
            y = None if labels is None else labels[idx]
            with autocast_context(device, precision):
                terms = loss_terms(model, x, y, spec, label_spec, generator, epoch + step / steps)
            optimizer.zero_grad(set_to_none=True)
            backward(terms, params_vae, params_cls)
            optimizer.step()
            for _ in range(cfg.training.classifier_steps if params_cls else 0):
                classifier_step(model, x, y, generator, optimizer, params_cls)
            logged[step] = torch.stack([getattr(terms, k).detach().double() for k in LOGGED])   # no host sync
        # The one host sync of the epoch (docs/performance.md): a non-finite loss stops the run,
        # naming the first step where it appeared; the checkpoint of the last good epoch is kept.
        bad = torch.nonzero(~torch.isfinite(logged[:, 0])).flatten().tolist()
        if bad:
            raise VaeasError(f"non-finite loss ({logged[bad[0], 0].item()}) at epoch {epoch + 1}, step {bad[0] + 1}; {kept}")
        means = (step_weights @ logged).tolist()                                     # per-sample means
        seconds = round(time.perf_counter() - t0, 3)
        if not bool(torch.stack([p.detach().sum() for p in model.parameters()]).isfinite().all()):
            raise VaeasError(f"non-finite parameters after epoch {epoch + 1}, step {steps} (its last); {kept}")
        history.append({"epoch": epoch + 1, **dict(zip(LOGGED, means)), "seconds": seconds})
        if monitor is not None and (epoch + 1) % cfg.training.monitor_every == 0:
            history[-1].update(monitor(model))
        if validator is not None and is_due(cfg, epoch + 1):
            history[-1][VALID_COLUMN] = validator(model, epoch + 1)
        bar.set_postfix(loss=f"{history[-1]['loss']:.2f}", kl=f"{history[-1]['kl']:.2f}")
        if (epoch + 1) % cfg.training.checkpoint_every == 0 or epoch + 1 == last_epoch:
            save_atomic({"format": CHECKPOINT_FORMAT, "record": record, "epoch": epoch + 1,
                         "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "generator": generator.get_state(), "history": history, "best": _best(validator)}, ckpt_path)
            write_log_csv(history, log_path)
    bar.close()
    if last_epoch < cfg.training.epochs:
        return ckpt_path
    write_log_csv(history, log_path)
    save_atomic({"format": MODEL_FORMAT, "record": record, "spec": spec.to_dict(),
                 "config": cfg.to_dict(), "data_dim": data_dim, "image_shape": list(dataset.image_shape),
                 "labels": None if label_spec is None else {"classes": label_spec.classes, "heads": label_spec.heads},
                 "model": {n: v.cpu() for n, v in model.state_dict().items()}, "history": history,
                 "best": _best(validator), "precision": precision}, out)
    ckpt_path.unlink(missing_ok=True)
    return out


def _best(validator: Validator | None) -> dict | None:
    """The best validated epoch and its model state, as checkpoints and model files store it."""
    return None if validator is None or validator.best is None else validator.best.to_dict()


def classifier_step(model: VAE, x: torch.Tensor, y: torch.Tensor, noise, optimizer: torch.optim.Adam,
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
