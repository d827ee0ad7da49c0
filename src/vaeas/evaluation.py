"""Evaluate a trained model: every column of the paper's Tables 1–3, and the Monte Carlo
estimates of Figure 2.

Drivers only: they run the networks to get tensors (μ, log σ², z, logits) in batches and hand
them to the pure functions of :mod:`vaeas.estimators` and :mod:`vaeas.metrics`.

* NLL_test: importance-weighted NLL with k samples (Burda et al. 2015) on the test set.
* KL_test, KL_train: mean analytic KL(q(z|x) || p(z)).
* AU: active units on the test set, Cov_x(E_q[z_d]) ≥ ε (§5.3).
* NLL_train: the reconstruction term E_q[−log p(x|z)] on the training set (one z per sample).
* MI, MD, SC: softmax estimates (eqs. 5, 9, 10, 8) on the training set, in the same pass and
  with the same z as NLL_train and KL_train, so MD = KL_train − log N + SC holds for the
  reported numbers exactly (N is the number of labels in use, N_eff, with shared labels).

All evaluation uses the fixed seeded binarization (``evaluation.binarize_seed``).
"""

from __future__ import annotations

import math
import time

import torch

from . import data as data_mod
from .estimators import (
    kl_standard_normal,
    marginal_kl_softmax,
    mc_estimates_subsets,
    mutual_information_from_entropy,
    softmax_cross_entropy,
    softmax_entropy,
)
from .errors import VaeasError
from .metrics import active_units, bernoulli_log_likelihood, iw_nll
from .models import VAE, make_labels
from .runtime import eval_binarized, resolve_device, tune_allocator
from .training.checkpoint import load_model

BATCH = 1000


@torch.no_grad()
def posteriors(model: VAE, x: torch.Tensor, batch: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, log σ²) of q(z|x) for every row of x."""
    outs = [model.encode(x[i:i + batch]) for i in range(0, x.shape[0], batch)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


@torch.no_grad()
def training_set_pass(model: VAE, x: torch.Tensor, labels: torch.Tensor | None, n_eff: int,
                      generator: torch.Generator, batch: int = BATCH) -> dict:
    """NLL_train, KL_train and (with a classifier) MI, MD, SC from one z per training sample."""
    n = x.shape[0]
    recon, kl, entropy, sc = [], [], [], []
    for i in range(0, n, batch):
        xb = x[i:i + batch]
        mu, logvar = model.encode(xb)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, device=mu.device)
        recon.append(-bernoulli_log_likelihood(model.decode(z), xb))
        kl.append(kl_standard_normal(mu, logvar))
        if model.classifier is not None:
            logits = model.classify(z)
            entropy.append(softmax_entropy(logits))
            sc.append(softmax_cross_entropy(logits, labels[i:i + batch]))
    kl_all = torch.cat(kl)
    out = {"nll_train": torch.cat(recon).mean().item(), "kl_train": kl_all.mean().item()}
    if model.classifier is not None:
        sc_all, h_all = torch.cat(sc), torch.cat(entropy)
        out["mi"] = mutual_information_from_entropy(h_all.mean().item(), n_eff)        # eqs. 5, 9
        out["md"] = marginal_kl_softmax(kl_all, sc_all, n_eff).item()
        out["sc"] = sc_all.mean().item()
    return out


#: Rows (examples × importance samples) of one decoder pass of the IW-NLL: 65,536 rows of 500
#: units keep every matmul large enough to run near the machine's sgemm rate (bench/iw.py).
IW_ROWS = 65536


@torch.no_grad()
def iw_nll_dataset(model: VAE, x: torch.Tensor, k: int, chunk: int, generator: torch.Generator,
                   progress: bool = False) -> torch.Tensor:
    """Per-example IW-NLL (Burda et al. 2015, k samples) of every row of x, (N,) float64.

    Examples go ``IW_ROWS // min(chunk, k)`` at a time to :func:`vaeas.metrics.iw_nll`, so that
    each decoder pass sees min(chunk, k) × that many rows.
    """
    from tqdm.auto import tqdm

    iw_batch = max(1, IW_ROWS // min(chunk, k))
    nll = []
    for i in tqdm(range(0, x.shape[0], iw_batch), desc=f"IW-NLL k={k}", disable=not progress):
        xb = x[i:i + iw_batch]
        nll.append(iw_nll(model.encode, lambda x, z: bernoulli_log_likelihood(model.decode(z), x),
                          xb, k, chunk, generator))
    return torch.cat(nll)


def evaluate(model: VAE, meta: dict, data_root: str | None = None, progress: bool = True) -> dict:
    """All Table 2 columns for one trained model, as a flat dict (plus provenance)."""
    cfg, spec = meta["cfg"], meta["spec"]
    ev = cfg.evaluation
    device = next(model.parameters()).device
    tune_allocator()
    dataset = data_mod.load(spec.dataset, data_root or cfg.data.root)
    t0 = time.perf_counter()
    train_x = eval_binarized(dataset.train_x, ev.binarize_seed).to(device)
    test_x = eval_binarized(dataset.test_x, ev.binarize_seed + 1).to(device)
    n_train = train_x.shape[0]
    labels, n_eff = None, n_train
    if model.classifier is not None:
        label_spec = make_labels(n_train, cfg.labels)
        labels, n_eff = label_spec.labels.to(device), label_spec.effective_count
    generator = torch.Generator(device=device).manual_seed(ev.binarize_seed + 2)
    row = training_set_pass(model, train_x, labels, n_eff, generator)

    mu_test, logvar_test = posteriors(model, test_x)
    row["kl_test"] = kl_standard_normal(mu_test, logvar_test).mean().item()
    row["au"] = int(active_units(mu_test, ev.au_threshold))
    iw_x = test_x if ev.iw_max_examples == 0 else test_x[:ev.iw_max_examples]
    row["nll_test"] = iw_nll_dataset(model, iw_x, ev.iw_samples, ev.iw_chunk, generator, progress).mean().item()
    row.update({
        "dataset": spec.dataset, "objective": spec.objective, "alpha": spec.alpha, "beta": spec.beta,
        "seed": spec.seed, "n_train": n_train, "n_test": test_x.shape[0], "n_iw": iw_x.shape[0],
        "iw_samples": ev.iw_samples, "label_count": n_eff, "log_n": math.log(n_train),
        "decoder_layers": cfg.model.decoder_layers, "seconds": round(time.perf_counter() - t0, 2),
    })
    return row


def monte_carlo(model: VAE, meta: dict, data_root: str | None = None) -> list[dict]:
    """Figure 2's Monte Carlo MI and MD on the training set for every S of ``mc_sizes``."""
    cfg, spec = meta["cfg"], meta["spec"]
    ev = cfg.evaluation
    device = next(model.parameters()).device
    tune_allocator()
    dataset = data_mod.load(spec.dataset, data_root or cfg.data.root)
    train_x = eval_binarized(dataset.train_x, ev.binarize_seed).to(device)
    n = train_x.shape[0]
    too_big = [s for s in ev.mc_sizes if s > n]
    if too_big:
        raise VaeasError(f"evaluation.mc_sizes: {too_big} exceed the {n} training samples of '{spec.dataset}'")
    mu, logvar = posteriors(model, train_x)
    generator = torch.Generator(device=device).manual_seed(ev.binarize_seed + 3)
    rows = []
    for size in ev.mc_sizes:
        res = mc_estimates_subsets(mu, logvar, size, ev.mc_repeats, generator, chunk=ev.mc_chunk)
        for r, (mi, md) in enumerate(zip(res["mis"], res["mds"])):
            rows.append({"dataset": spec.dataset, "alpha": spec.alpha, "beta": spec.beta, "seed": spec.seed,
                         "size": size, "repeat": r, "mi": float(mi), "md": float(md)})
    return rows


def load_for_eval(path: str, device: str = "auto") -> tuple[VAE, dict]:
    return load_model(path, resolve_device(device))
