"""Training of VAE (eq. 2) and VAE-AS (eq. 3): objective, loop, checkpoints.

The loop is one function, :func:`train`, readable top to bottom (nanoGPT style). Per step:

1. dynamically binarize the batch (x ~ Bernoulli(intensity), redrawn every time a sample is seen);
2. encode, reparameterise one z per sample, decode, classify z;
3. θ, φ (encoder, decoder) minimise  recon + α·MI + β·MD  (eq. 3, with MI from eqs. 5/9 and MD
   from eq. 10); ω (classifier) minimises only SC (eq. 8). Both gradients come from one forward
   pass: ``backward(inputs=...)`` routes each loss to its own parameters.

The VAE baseline is the same encoder/decoder trained on the negative ELBO, recon + KL.

Every random draw (initialisation, shuffling, binarization, ε) comes from generators seeded by the
run's seed whose states are checkpointed each epoch, so an interrupted run resumed from its last
checkpoint ends bitwise equal to an uninterrupted one on CPU.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io as _io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import data as data_mod
from .config import Config
from .errors import VaeasError
from .estimators import (
    kl_standard_normal,
    marginal_kl_softmax,
)
from .io import atomic_path, payload_sha256
from .metrics import bernoulli_log_likelihood
from .models import VAE, LabelSpec, StackedVAE, make_labels
from .runtime import autocast_context, binarize, eval_binarized, resolve_device, tune_allocator  # noqa: F401 (eval_binarized: re-exported)

OBJECTIVES = ("vae", "vaeas")
LOG_COLUMNS = ("epoch", "loss", "recon", "kl", "mi", "md", "sc", "entropy", "seconds")
LOGGED = LOG_COLUMNS[1:8]
MODEL_FORMAT = "vaeas-model-v1"
CHECKPOINT_FORMAT = "vaeas-checkpoint-v1"


@dataclass(frozen=True)
class RunSpec:
    """What distinguishes one training job of the grid from another."""

    dataset: str
    objective: str = "vaeas"
    alpha: float = 1.0
    beta: float = 1.0
    seed: int = 0

    def validate(self) -> None:
        if self.dataset not in data_mod.DATASETS:
            raise VaeasError(f"unknown data set '{self.dataset}' (choose from: {', '.join(sorted(data_mod.DATASETS))})")
        if self.objective not in OBJECTIVES:
            raise VaeasError(f"unknown objective '{self.objective}' (choose from: vae, vaeas)")
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise VaeasError(f"--{name} must be a finite number >= 0, got {value}")
        if self.seed < 0:
            raise VaeasError(f"--seed must be >= 0, got {self.seed}")


@dataclass
class LossTerms:
    """Per-batch means of the quantities the paper reports (nats per sample)."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    mi: torch.Tensor
    md: torch.Tensor
    sc: torch.Tensor
    entropy: torch.Tensor


def standard_normal(mu: torch.Tensor, generator: torch.Generator | list[torch.Generator]) -> torch.Tensor:
    """ε ~ N(0, I) shaped like ``mu``; with one generator per stacked model (mu (K, B, D)), slice
    k is drawn with generator k, exactly as model k's own run would draw it."""
    if isinstance(generator, torch.Generator):
        return torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return torch.stack([torch.randn(mu.shape[1:], generator=g, device=mu.device, dtype=mu.dtype)
                        for g in generator])


def loss_terms(model: VAE, x: torch.Tensor, labels: torch.Tensor | None, spec: RunSpec,
               label_spec: LabelSpec | None, generator: torch.Generator) -> LossTerms:
    """Forward pass and the objective of ``spec.objective`` on one binarized batch.

    Also serves K stacked models (``model`` a StackedVAE, x (K, B, P), one generator per model,
    ``spec.alpha`` / ``spec.beta`` tensors of K): every term is then a (K,) tensor.
    """
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * standard_normal(mu, generator)
    recon = -bernoulli_log_likelihood(model.decode(z), x).mean(-1)
    kl_per_sample = kl_standard_normal(mu, logvar)
    kl = kl_per_sample.mean(-1)
    if spec.objective == "vae":
        nan = torch.full_like(kl, float("nan"))
        return LossTerms(recon + kl, recon, kl, nan, nan, nan, nan)
    # H and CE reach z only (ω fixed), SC reaches ω only: the routing of eqs. 3 and 8 is built
    # into the graph (models.RoutedSoftmaxHead), so one backward pass serves both losses.
    n_eff = label_spec.effective_count
    entropy_per_sample, ce_per_sample, sc_per_sample = model.classifier.routed_statistics(z, labels)
    mi = math.log(n_eff) - entropy_per_sample.mean(-1)                   # eqs. 5, 9
    md = marginal_kl_softmax(kl_per_sample, ce_per_sample, n_eff)         # eq. 10
    loss = recon + spec.alpha * mi + spec.beta * md
    entropy = math.log(n_eff) - mi
    return LossTerms(loss, recon, kl, mi, md, sc_per_sample.mean(-1), entropy)


def backward(terms: LossTerms, params_vae: list, params_cls: list) -> None:
    """Route the gradients of eq. 3: θ, φ get ∇(recon + α·MI + β·MD); ω gets only ∇SC (eq. 8).

    :func:`loss_terms` builds the routing into the graph (``terms.loss`` does not reach ω and
    ``terms.sc`` does not reach θ, φ), so one backward pass over both gives each its gradient.
    For K stacked models the (K,) terms are summed: each model's weights get its own gradient.
    """
    if params_cls:
        torch.autograd.backward([terms.loss.sum(), terms.sc.sum()], inputs=[*params_vae, *params_cls])
    else:
        terms.loss.sum().backward(inputs=params_vae)


def run_fingerprint(cfg: Config, spec: RunSpec) -> str:
    """Hash of everything that determines the trained numbers (not device or thread settings)."""
    payload = {"spec": dataclasses.asdict(spec), "model": dataclasses.asdict(cfg.model),
               "labels": dataclasses.asdict(cfg.labels), "data": cfg.data.omniglot_source,
               "training": {k: v for k, v in dataclasses.asdict(cfg.training).items()
                            if k not in ("device", "threads", "checkpoint_every")}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _save_atomic(obj, path: Path) -> None:
    # The payload's sha256 travels inside the file: torch.load checks no CRC, so a flipped bit
    # in a weight would otherwise load silently (tests/test_reliability_files.py).
    obj = {**obj, "sha256": payload_sha256(obj)}
    buffer = _io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _check_sha256(blob: dict, path: Path, what: str, remedy: str) -> None:
    """Refuse a file whose content no longer matches the sha256 recorded when it was saved."""
    if blob.get("sha256") != payload_sha256({k: v for k, v in blob.items() if k != "sha256"}):
        raise VaeasError(f"{what} {path} does not match the sha256 recorded when it was saved (altered or damaged); {remedy}")


def _load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or corrupt file is never used
        raise VaeasError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}); delete it to start over") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise VaeasError(f"checkpoint {path} is not a vaeas checkpoint; delete it to start over")
    _check_sha256(ckpt, path, "checkpoint", "delete it to start over")
    if ckpt.get("fingerprint") != fingerprint:
        print(f"vaeas: checkpoint {path} belongs to another configuration; starting from scratch")
        return None
    return ckpt


def write_log_csv(history: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row[k] for k in LOG_COLUMNS})


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
    dataset = data_mod.load(spec.dataset, cfg.data)
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
    early (leaving the checkpoint), as an interruption would: used by tests.
    """
    spec.validate()
    tune_allocator()
    out = Path(out)
    ckpt_path = out.with_name(out.name + ".ckpt")
    log_path = out.with_name(out.stem + ".log.csv")
    device, dataset, label_spec = _prepare(cfg, spec)
    n_train = dataset.train_x.shape[0]
    fingerprint = run_fingerprint(cfg, spec)

    model = build_model(cfg, spec, dataset.train_x.shape[1], label_spec).to(device)
    optimizer = make_optimizer(model, cfg)
    generator = torch.Generator(device=device).manual_seed(spec.seed)
    history: list[dict] = []
    start_epoch = 0
    ckpt = _load_checkpoint(ckpt_path, fingerprint)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        generator.set_state(ckpt["generator"])
        history, start_epoch = ckpt["history"], ckpt["epoch"]

    train_x = dataset.train_x.to(device)
    labels = label_spec.labels.to(device) if label_spec is not None else None
    batch = cfg.training.batch_size
    steps = math.ceil(n_train / batch)
    params_vae, params_cls = model.vae_parameters(), model.classifier_parameters()
    last_epoch = cfg.training.epochs if stop_after_epoch is None else min(stop_after_epoch, cfg.training.epochs)
    step_weights = torch.tensor([min(batch, n_train - s * batch) / n_train for s in range(steps)],
                                device=device, dtype=torch.float64)

    from tqdm.auto import tqdm

    bar = tqdm(range(start_epoch, last_epoch), initial=start_epoch, total=cfg.training.epochs,
               desc=f"train {spec.dataset} {spec.objective} a={spec.alpha:g} b={spec.beta:g} s={spec.seed}",
               disable=not progress, unit="epoch")
    for epoch in bar:
        t0 = time.perf_counter()
        perm = torch.randperm(n_train, generator=generator, device=device)
        logged = torch.empty((steps, len(LOGGED)), device=device, dtype=torch.float64)
        for step in range(steps):
            idx = perm[step * batch:(step + 1) * batch]
            x = binarize(train_x[idx], generator)
            with autocast_context(device, cfg.training.precision):
                terms = loss_terms(model, x, None if labels is None else labels[idx], spec, label_spec, generator)
            optimizer.zero_grad(set_to_none=True)
            backward(terms, params_vae, params_cls)
            optimizer.step()
            logged[step] = torch.stack([getattr(terms, k).detach().double() for k in LOGGED])  # no host sync
        # The one host sync of the epoch (docs/performance.md): a non-finite loss stops the run,
        # naming the first step where it appeared; the checkpoint of the last good epoch is kept.
        bad = torch.nonzero(~torch.isfinite(logged[:, 0])).flatten().tolist()
        if bad:
            raise VaeasError(f"non-finite loss ({logged[bad[0], 0].item()}) at epoch {epoch + 1}, step {bad[0] + 1}; the last good checkpoint {ckpt_path} is kept")
        means = step_weights @ logged                                     # per-sample means over the epoch
        row = {"epoch": epoch + 1, **dict(zip(LOGGED, means.tolist())),
               "seconds": round(time.perf_counter() - t0, 3)}
        if not bool(torch.stack([p.detach().sum() for p in model.parameters()]).isfinite().all()):
            raise VaeasError(f"non-finite parameters after epoch {epoch + 1}, step {steps} (its last); the last good checkpoint {ckpt_path} is kept")
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.2f}", kl=f"{row['kl']:.2f}")
        if (epoch + 1) % cfg.training.checkpoint_every == 0 or epoch + 1 == last_epoch:
            _save_atomic({"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "epoch": epoch + 1,
                          "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "generator": generator.get_state(), "history": history}, ckpt_path)
            write_log_csv(history, log_path)
    bar.close()
    if last_epoch < cfg.training.epochs:
        return ckpt_path
    write_log_csv(history, log_path)
    _save_atomic({"format": MODEL_FORMAT, "fingerprint": fingerprint, "spec": dataclasses.asdict(spec),
                  "config": cfg.to_dict(), "data_dim": dataset.train_x.shape[1],
                  "image_shape": list(dataset.image_shape),
                  "labels": None if label_spec is None else {"classes": label_spec.classes, "heads": label_spec.heads},
                  "model": {k: v.cpu() for k, v in model.state_dict().items()}, "history": history}, out)
    ckpt_path.unlink(missing_ok=True)
    return out


@dataclass(frozen=True)
class StackedSpec:
    """What :func:`loss_terms` reads of a RunSpec, for K stacked runs: α and β as (K,) tensors."""

    objective: str
    alpha: torch.Tensor
    beta: torch.Tensor


def _unstack_optimizer_state(state: dict, k: int) -> dict:
    """Run k's share of the stacked Adam's state: the state_dict a lone run's Adam would have
    (StackedVAE orders its parameters as VAE does, so the parameter indices agree)."""
    return {"state": {i: {name: v if name == "step" else v[k].clone() for name, v in st.items()}
                      for i, st in state["state"].items()},
            "param_groups": [dict(g) for g in state["param_groups"]]}


def _stack_optimizer_states(states: list[dict]) -> dict:
    first = states[0]
    return {"state": {i: {name: v if name == "step" else torch.stack([s["state"][i][name] for s in states])
                          for name, v in st.items()} for i, st in first["state"].items()},
            "param_groups": first["param_groups"]}


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
    tune_allocator()
    if len({(s.dataset, s.objective) for s in specs}) != 1:
        raise VaeasError("train_many: the configurations must share the data set and the objective")
    spec0 = specs[0]
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
    ckpts = [_load_checkpoint(p, f) for p, f in zip(ckpt_paths, fingerprints)]
    resume = all(c is not None for c in ckpts) and len({c["epoch"] for c in ckpts}) == 1
    if resume:
        for model, gen, c in zip(models, generators, ckpts):
            model.load_state_dict(c["model"])
            gen.set_state(c["generator"])
        histories, start_epoch = [c["history"] for c in ckpts], ckpts[0]["epoch"]
    elif any(c is not None for c in ckpts):
        print("vaeas: the group's checkpoints are not all of one epoch; starting every run from scratch")
    model = StackedVAE(models).to(device)
    del models
    optimizer = make_optimizer(model, cfg)
    if resume:
        optimizer.load_state_dict(_stack_optimizer_states([c["optimizer"] for c in ckpts]))

    train_x = dataset.train_x.to(device)
    labels = label_spec.labels.to(device) if label_spec is not None else None
    k_runs, batch = len(specs), cfg.training.batch_size
    steps = math.ceil(n_train / batch)
    params_vae, params_cls = model.vae_parameters(), model.classifier_parameters()
    stacked = StackedSpec(spec0.objective, torch.tensor([s.alpha for s in specs], device=device),
                          torch.tensor([s.beta for s in specs], device=device))
    last_epoch = cfg.training.epochs if stop_after_epoch is None else min(stop_after_epoch, cfg.training.epochs)
    step_weights = torch.tensor([min(batch, n_train - s * batch) / n_train for s in range(steps)],
                                device=device, dtype=torch.float64)
    name = lambda k: f"{specs[k].dataset} {specs[k].objective} alpha={specs[k].alpha:g} beta={specs[k].beta:g} seed={specs[k].seed}"

    from tqdm.auto import tqdm

    bar = tqdm(range(start_epoch, last_epoch), initial=start_epoch, total=cfg.training.epochs,
               desc=f"train {k_runs} x {spec0.dataset} {spec0.objective}", disable=not progress, unit="epoch")
    for epoch in bar:
        t0 = time.perf_counter()
        perms = [torch.randperm(n_train, generator=g, device=device) for g in generators]
        logged = torch.empty((steps, k_runs, len(LOGGED)), device=device, dtype=torch.float64)
        for step in range(steps):
            idx = [perm[step * batch:(step + 1) * batch] for perm in perms]
            x = torch.stack([binarize(train_x[i], g) for i, g in zip(idx, generators)])      # (K, B, P)
            with autocast_context(device, cfg.training.precision):
                terms = loss_terms(model, x, None if labels is None else torch.stack([labels[i] for i in idx]),
                                   stacked, label_spec, generators)
            optimizer.zero_grad(set_to_none=True)
            backward(terms, params_vae, params_cls)
            optimizer.step()
            logged[step] = torch.stack([getattr(terms, k).detach().double() for k in LOGGED], -1)
        bad = torch.nonzero(~torch.isfinite(logged[:, :, 0])).tolist()          # (step, run), step-major
        if bad:
            step, k = bad[0]
            raise VaeasError(f"non-finite loss ({logged[step, k, 0].item()}) of {name(k)} at epoch {epoch + 1}, step {step + 1}; the last good checkpoints are kept")
        means = (step_weights @ logged.flatten(1)).view(k_runs, len(LOGGED)).tolist()
        seconds = round(time.perf_counter() - t0, 3)
        finite = torch.stack([p.detach().flatten(1).sum(1) for p in model.parameters()]).isfinite().all(0).tolist()
        if not all(finite):
            raise VaeasError(f"non-finite parameters of {name(finite.index(False))} after epoch {epoch + 1}, step {steps} (its last); the last good checkpoints are kept")
        for k in range(k_runs):
            histories[k].append({"epoch": epoch + 1, **dict(zip(LOGGED, means[k])), "seconds": seconds})
        bar.set_postfix(loss=" ".join(f"{h[-1]['loss']:.2f}" for h in histories))
        if (epoch + 1) % cfg.training.checkpoint_every == 0 or epoch + 1 == last_epoch:
            state = optimizer.state_dict()
            for k in range(k_runs):
                _save_atomic({"format": CHECKPOINT_FORMAT, "fingerprint": fingerprints[k], "epoch": epoch + 1,
                              "model": model.state_dict_of(k), "optimizer": _unstack_optimizer_state(state, k),
                              "generator": generators[k].get_state(), "history": histories[k]}, ckpt_paths[k])
                write_log_csv(histories[k], log_paths[k])
    bar.close()
    if last_epoch < cfg.training.epochs:
        return ckpt_paths
    for k in range(k_runs):
        write_log_csv(histories[k], log_paths[k])
        _save_atomic({"format": MODEL_FORMAT, "fingerprint": fingerprints[k], "spec": dataclasses.asdict(specs[k]),
                      "config": cfg.to_dict(), "data_dim": data_dim, "image_shape": list(dataset.image_shape),
                      "labels": None if label_spec is None else {"classes": label_spec.classes, "heads": label_spec.heads},
                      "model": {n: v.cpu() for n, v in model.state_dict_of(k).items()}, "history": histories[k]}, outs[k])
        ckpt_paths[k].unlink(missing_ok=True)
    return outs


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[VAE, dict]:
    """Load a trained model file written by :func:`train`; returns (model, metadata)."""
    from .config import build_config

    path = Path(path)
    if not path.is_file():
        raise VaeasError(f"model file {path} not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise VaeasError(f"model file {path} is corrupt or truncated ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != MODEL_FORMAT:
        raise VaeasError(f"model file {path} is not a vaeas model")
    _check_sha256(blob, path, "model file", "delete it and rerun 'vaeas train'")
    cfg = build_config(blob["config"], profile=blob["config"].get("profile", ""), source=str(path))
    labels = blob["labels"]
    model = VAE(blob["data_dim"], cfg.model, **({} if labels is None else labels))
    model.load_state_dict(blob["model"])
    return model.to(device).eval(), {**blob, "cfg": cfg, "spec": RunSpec(**blob["spec"])}
