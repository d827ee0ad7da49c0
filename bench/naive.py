"""The reference implementations the benchmarks compare against (kept verbatim, never used by
the pipeline).

* :func:`naive_step`: the training step as first written (commit 66f50c1): the classifier's
  logits materialised, entropy and cross-entropy from log_softmax, two backward passes through
  the 500 × N output layer, and ``torch.optim.Adam`` with its default (per-tensor) kernels.
* :func:`straightforward_log_aggregate`: log q̄(z) the way research code usually writes it
  (He et al. 2019's ``calc_mi``): for each batch of z, the full (B, S, D) matrix of differences
  by broadcasting, in float32.
"""

from __future__ import annotations

import math

import torch

from vaeas.estimators import (
    kl_standard_normal,
    marginal_kl_softmax,
    mutual_information_softmax,
    softmax_cross_entropy,
)
from vaeas.metrics import bernoulli_log_likelihood


def naive_loss(model, x, labels, alpha, beta, n_eff, generator):
    mu, logvar = model.encode(x)
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps
    recon = -bernoulli_log_likelihood(model.decode(z), x).mean()
    kl_per_sample = kl_standard_normal(mu, logvar)
    logits = model.classify(z)
    sc_per_sample = softmax_cross_entropy(logits, labels)
    mi = mutual_information_softmax(logits, n_eff)
    md = marginal_kl_softmax(kl_per_sample, sc_per_sample, n_eff)
    return recon + alpha * mi + beta * md, sc_per_sample.mean()


def naive_step(model, optimizer, x, labels, alpha, beta, n_eff, generator):
    loss, sc = naive_loss(model, torch.bernoulli(x, generator=generator), labels, alpha, beta, n_eff, generator)
    if not torch.isfinite(loss):
        raise RuntimeError("non-finite loss")
    optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=model.vae_parameters(), retain_graph=True)
    sc.backward(inputs=model.classifier_parameters())
    optimizer.step()


def naive_optimizer(model, lr=1e-3):
    return torch.optim.Adam([{"params": model.vae_parameters(), "lr": lr},
                             {"params": model.classifier_parameters(), "lr": lr}])


def straightforward_log_aggregate(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                                  batch: int = 128) -> torch.Tensor:
    """log (1/S) Σ_j N(z_m; μ_j, σ_j²) for each row of z, by (B, S, D) broadcasting (float32)."""
    s, d = mu.shape
    var = logvar.exp()
    const = 0.5 * (d * math.log(2 * math.pi) + logvar.sum(-1))          # (S,)
    out = []
    for i in range(0, z.shape[0], batch):
        dev = z[i:i + batch, None, :] - mu[None]                        # (B, S, D)
        log_density = -0.5 * (dev ** 2 / var).sum(-1) - const           # (B, S)
        out.append(torch.logsumexp(log_density, dim=1) - math.log(s))
    return torch.cat(out)
