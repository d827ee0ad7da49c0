"""Batched forward passes of a model over a data set, shared by evaluation and by training-time
monitoring and validation: the posteriors (μ, log σ²), the IW-NLL of a set of images, and the
training-set pass (NLL_train, KL_train and the softmax MI, MD, SC from one z per sample). The formulas are :mod:`vaeas.estimators`' and
:mod:`vaeas.metrics`', called, not re-typed.
"""

from __future__ import annotations

import torch

from .estimators import (kl_standard_normal, marginal_kl_softmax, mutual_information_from_entropy,
                         softmax_cross_entropy, softmax_entropy)
from .metrics import bernoulli_log_likelihood, iw_nll
from .models import VAE

BATCH = 1000

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


@torch.no_grad()
def posteriors(model: VAE, x: torch.Tensor, batch: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, log σ²) of q(z|x) for every row of x."""
    outs = [model.encode(x[i:i + batch]) for i in range(0, x.shape[0], batch)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


@torch.no_grad()
def training_set_pass(model: VAE, x: torch.Tensor, labels: torch.Tensor | None, n_eff: int,
                      generator: torch.Generator, batch: int = BATCH, md_count: int | None = None) -> dict:
    """NLL_train, KL_train and (with a classifier) MI, MD, SC from one z per training sample.

    MI uses log ``n_eff``; MD (eq. 10) uses log ``md_count`` (default ``n_eff``; the caller passes
    :attr:`vaeas.models.LabelSpec.marginal_count`, docs/decisions.md D5)."""
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
        out["md"] = marginal_kl_softmax(kl_all, sc_all, md_count or n_eff).item()
        out["sc"] = sc_all.mean().item()
    return out
