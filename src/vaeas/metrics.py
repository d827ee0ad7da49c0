"""Evaluation metrics of the paper's §5.3: IW-NLL (Burda et al. 2015), analytic KL, active units.

All functions are device-agnostic (they follow the inputs' device). Putting modules in eval mode
is the caller's business; nothing here calls ``.train()`` / ``.eval()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .estimators import kl_standard_normal, log_normal_diag, log_standard_normal, sample_standard_normal

__all__ = [
    "bernoulli_log_likelihood",
    "iw_log_likelihood",
    "iw_nll",
    "active_unit_variances",
    "active_units",
    "mean_kl",
    "NOISE_BLOCK",
]

#: The importance samples' noise is drawn in blocks of this many samples (the last block is the
#: remainder), independently of ``chunk``, so that iw_nll's result does not depend on ``chunk``.
NOISE_BLOCK = 64


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) = Σ_p [x_p log σ(l_p) + (1 − x_p) log(1 − σ(l_p))] over the last dim.

    Equals −BCE-with-logits, computed stably as x·l − softplus(l); ``logits`` (…, P) and ``x``
    broadcast (e.g. logits (k, B, P) against x (B, P)).

    Without autograd (the IW-NLL's k × B × P pixels) softplus(l) is taken as
    max(l, 0) + log(1 + e^{−|l|}) with exp and log, in place: torch's softplus and log1p CPU
    kernels are about 6× slower on their own (bench/iw.py). log(1 + y) for y = e^{−|l|} ≤ 1 errs
    from log1p(y) by at most half an ulp of 1 per pixel (6e-8 in float32, 1e-16 in float64).
    """
    x = x.to(logits.dtype)
    if torch.is_grad_enabled() and logits.requires_grad:
        return (x * logits - F.softplus(logits)).sum(-1)
    softplus = logits.abs().neg_().exp_().add_(1.0).log_().add_(logits.clamp_min(0.0))
    return (x * logits).sub_(softplus).sum(-1)


def iw_log_likelihood(log_joint: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """The k-sample importance-weighted estimate of log p(x) (Burda et al. 2015, eq. 8), (B,).

    ``log_joint`` = log p(x, z_k) and ``log_q`` = log q(z_k|x), both (k, B):
    log (1/k) Σ_k p(x, z_k)/q(z_k|x) = logsumexp_k(log_joint − log_q) − log k.
    """
    k = log_joint.shape[0]
    return torch.logsumexp(log_joint - log_q, dim=0) - math.log(k)


@torch.no_grad()
def iw_nll(encode: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
           log_px_given_z: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
           x: torch.Tensor, k: int, chunk: int,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-example −log p̂(x) with k importance samples z ~ q(z|x) (Burda et al. 2015), (B,).

    ``encode(x) -> (mu, logvar)`` gives q(z|x); ``log_px_given_z(x, z) -> (c, B)`` for z of
    shape (c, B, D). The prior is N(0, I). ``x`` is one batch chosen by the caller; the k samples
    are processed ``chunk`` at a time and the logsumexp is streamed (per-chunk logsumexp,
    combined at the end), so memory is O(chunk × B) whatever k (the paper uses k = 4096).

    The noise is drawn with ``generator`` in blocks of :data:`NOISE_BLOCK` samples independent
    of ``chunk``, so the result does not depend on ``chunk``. The log weights are accumulated in
    float64; the result is float64.
    """
    if k < 1 or chunk < 1:
        raise ValueError(f"iw_nll: k and chunk must be ≥ 1, got k={k}, chunk={chunk}")
    mu, logvar = encode(x)
    std = torch.exp(0.5 * logvar)
    b, d = mu.shape
    buf = mu.new_empty((0, b, d))
    drawn = 0
    parts = []
    for start in range(0, k, chunk):
        c = min(chunk, k - start)
        while buf.shape[0] < c:
            n_new = min(NOISE_BLOCK, k - drawn)
            new = sample_standard_normal((n_new, b, d), generator, device=mu.device, dtype=mu.dtype)
            buf = torch.cat([buf, new]) if buf.shape[0] else new
            drawn += n_new
        eps, buf = buf[:c], buf[c:]
        z = mu + std * eps                                           # (c, B, D)
        log_w = (log_px_given_z(x, z).to(torch.float64)
                 + log_standard_normal(z).to(torch.float64)
                 - log_normal_diag(z, mu, logvar).to(torch.float64))  # (c, B)
        parts.append(torch.logsumexp(log_w, dim=0))
    log_px = torch.logsumexp(torch.stack(parts), dim=0) - math.log(k)
    return -log_px


def active_unit_variances(mu: torch.Tensor) -> torch.Tensor:
    """Cov_x(E_q[z_d]) for each latent dimension d, shape (D,), in float64.

    The variance across the data set of mu[:, d] = E_{q(z|x)}[z_d], with the unbiased estimator
    (divisor N − 1); needs N ≥ 2.
    """
    if mu.dim() != 2 or mu.shape[0] < 2:
        raise ValueError(f"active_unit_variances: mu must be (N, D) with N ≥ 2, got {tuple(mu.shape)}")
    return mu.to(torch.float64).var(dim=0, correction=1)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """AU = #{d : Cov_x(E_q[z_d]) ≥ ε} (the paper's §5.3 via Burda et al. 2015; ε = 0.01).

    Uses :func:`active_unit_variances` (unbiased variance); the comparison is inclusive (≥).
    """
    return int((active_unit_variances(mu) >= threshold).sum().item())


def mean_kl(mu: torch.Tensor, logvar: torch.Tensor) -> float:
    """Mean over the rows of the analytic KL(q(z|x) || N(0, I)) (KL_train / KL_test of §5.3)."""
    return float(kl_standard_normal(mu, logvar).mean().item())
