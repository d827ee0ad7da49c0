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
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from . import data as data_mod
from .config import Config
from .errors import VaeasError
from .estimators import (
    kl_standard_normal,
    marginal_kl_softmax,
    mutual_information_softmax,
    softmax_cross_entropy,
    softmax_entropy,
)
from .io import atomic_path
from .metrics import bernoulli_log_likelihood
from .models import VAE, LabelSpec, make_labels

OBJECTIVES = ("vae", "vaeas")
LOG_COLUMNS = ("epoch", "loss", "recon", "kl", "mi", "md", "sc", "entropy", "seconds")
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


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when present, else CPU; 'cuda' without a GPU is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaeasError("training.device is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    return torch.device(name)


def autocast_context(device: torch.device, precision: str):
    """bf16 autocast when asked (CUDA or CPU); TF32 is a global matmul switch set in :func:`train`."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def binarize(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One Bernoulli draw per pixel with the pixel's intensity as probability (dynamic binarization)."""
    return torch.bernoulli(x, generator=generator)


def eval_binarized(x: torch.Tensor, seed: int) -> torch.Tensor:
    """The fixed, seeded binarization used for every evaluation (same bits on every device)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x.detach().to("cpu", torch.float32), generator=gen).to(x.device)


def loss_terms(model: VAE, x: torch.Tensor, labels: torch.Tensor | None, spec: RunSpec,
               label_spec: LabelSpec | None, generator: torch.Generator) -> LossTerms:
    """Forward pass and the objective of ``spec.objective`` on one binarized batch."""
    mu, logvar = model.encode(x)
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps
    recon = -bernoulli_log_likelihood(model.decode(z), x).mean()
    kl_per_sample = kl_standard_normal(mu, logvar)
    kl = kl_per_sample.mean()
    if spec.objective == "vae":
        nan = torch.full((), float("nan"), device=x.device)
        return LossTerms(recon + kl, recon, kl, nan, nan, nan, nan)
    logits = model.classify(z)
    sc_per_sample = softmax_cross_entropy(logits, labels)
    mi = mutual_information_softmax(logits, label_spec.effective_count)
    md = marginal_kl_softmax(kl_per_sample, sc_per_sample, label_spec.effective_count)
    loss = recon + spec.alpha * mi + spec.beta * md
    entropy = math.log(label_spec.effective_count) - mi
    return LossTerms(loss, recon, kl, mi, md, sc_per_sample.mean(), entropy)


def backward(terms: LossTerms, params_vae: list, params_cls: list) -> None:
    """Route the gradients of eq. 3: θ, φ get ∇(recon + α·MI + β·MD); ω gets only ∇SC (eq. 8)."""
    terms.loss.backward(inputs=params_vae, retain_graph=bool(params_cls))
    if params_cls:
        terms.sc.backward(inputs=params_cls)


def run_fingerprint(cfg: Config, spec: RunSpec) -> str:
    """Hash of everything that determines the trained numbers (not device or thread settings)."""
    payload = {"spec": dataclasses.asdict(spec), "model": dataclasses.asdict(cfg.model),
               "labels": dataclasses.asdict(cfg.labels), "data": cfg.data.omniglot_source,
               "training": {k: v for k, v in dataclasses.asdict(cfg.training).items()
                            if k not in ("device", "threads", "checkpoint_every")}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _save_atomic(obj, path: Path) -> None:
    buffer = _io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or corrupt file is never used
        raise VaeasError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}); delete it to start over") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise VaeasError(f"checkpoint {path} is not a vaeas checkpoint; delete it to start over")
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


def train(cfg: Config, spec: RunSpec, out: str | Path, progress: bool = True,
          stop_after_epoch: int | None = None) -> Path:
    """Train one configuration; write the final model to ``out``.

    A checkpoint ``<out>.ckpt`` and the per-epoch log ``<out stem>.log.csv`` sit beside ``out``;
    a rerun of the same command resumes from the checkpoint. ``stop_after_epoch`` ends the run
    early (leaving the checkpoint), as an interruption would: used by tests.
    """
    spec.validate()
    out = Path(out)
    ckpt_path = out.with_name(out.name + ".ckpt")
    log_path = out.with_name(out.stem + ".log.csv")
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
    fingerprint = run_fingerprint(cfg, spec)

    model = build_model(cfg, spec, dataset.train_x.shape[1], label_spec).to(device)
    optimizer = torch.optim.Adam([
        {"params": model.vae_parameters(), "lr": cfg.training.lr},
        {"params": model.classifier_parameters(), "lr": cfg.training.classifier_lr},
    ])
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

    from tqdm.auto import tqdm

    bar = tqdm(range(start_epoch, last_epoch), initial=start_epoch, total=cfg.training.epochs,
               desc=f"train {spec.dataset} {spec.objective} a={spec.alpha:g} b={spec.beta:g} s={spec.seed}",
               disable=not progress, unit="epoch")
    for epoch in bar:
        t0 = time.perf_counter()
        perm = torch.randperm(n_train, generator=generator, device=device)
        sums = {k: torch.zeros((), device=device, dtype=torch.float64) for k in LOG_COLUMNS[1:8]}
        for step in range(steps):
            idx = perm[step * batch:(step + 1) * batch]
            x = binarize(train_x[idx], generator)
            with autocast_context(device, cfg.training.precision):
                terms = loss_terms(model, x, None if labels is None else labels[idx], spec, label_spec, generator)
            if not torch.isfinite(terms.loss):
                raise VaeasError(f"non-finite loss ({terms.loss.item()}) at epoch {epoch + 1}, step {step + 1}; the last good checkpoint {ckpt_path} is kept")
            optimizer.zero_grad(set_to_none=True)
            backward(terms, params_vae, params_cls)
            optimizer.step()
            weight = x.shape[0] / n_train
            for key in sums:
                sums[key] += getattr(terms, key).detach().double() * weight
        row = {"epoch": epoch + 1, **{k: v.item() for k, v in sums.items()},
               "seconds": round(time.perf_counter() - t0, 3)}
        if not all(math.isfinite(p.detach().sum().item()) for p in model.parameters()):
            raise VaeasError(f"non-finite parameters after epoch {epoch + 1}; the last good checkpoint {ckpt_path} is kept")
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
    cfg = build_config(blob["config"], profile=blob["config"].get("profile", ""), source=str(path))
    labels = blob["labels"]
    model = VAE(blob["data_dim"], cfg.model, **({} if labels is None else labels))
    model.load_state_dict(blob["model"])
    return model.to(device).eval(), {**blob, "cfg": cfg, "spec": RunSpec(**blob["spec"])}
