"""Pure tensor estimators of the VAE-AS paper (§3, Appendix 7) and the Monte Carlo baseline.

Conventions
-----------
* A Gaussian posterior q(z|x) = N(mu, diag exp(logvar)) is given by two tensors ``mu, logvar``
  of shape (N, D).
* The auxiliary classifier s_ω(e|z) is given by its logits: one tensor (B, V), or a sequence of
  K tensors (B, V_k) for the multi-head label of §3.3, whose fit of q(x|z) is the product
  (Cartesian product, i.e. independent heads) of the heads' softmax distributions. Labels are
  (B,) long for one head and (B, K) long for K heads.
* Everything is device- and dtype-agnostic: results live on the inputs' device. Functions
  without ``torch.no_grad`` are differentiable (the training loss uses them).

Decomposition used throughout (Hoffman & Johnson 2016; the paper's §3.1 and Appendix 7.1)::

    mean_i KL(q(z|x_i) || p(z)) = I_q(z, x) + KL(q̄(z) || p(z)),   q̄(z) = (1/N) Σ_j q(z|x_j).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

# N_eff is a property of the labels, defined beside them (models.LabelSpec); re-exported here
# because every softmax estimate takes it.
from .models import effective_label_count  # noqa: F401

LOG_2PI = math.log(2.0 * math.pi)

Logits = torch.Tensor | Sequence[torch.Tensor]

__all__ = [
    "LOG_2PI",
    "log_normal_diag",
    "log_standard_normal",
    "kl_standard_normal",
    "kl_standard_normal_per_dimension",
    "softmax_entropy",
    "softmax_cross_entropy",
    "effective_label_count",
    "mutual_information_softmax",
    "mutual_information_from_entropy",
    "marginal_kl_softmax",
    "sample_standard_normal",
    "log_aggregate_posterior",
    "mutual_information_mc",
    "marginal_kl_mc",
    "mc_estimates",
    "mc_estimates_subsets",
]


# --------------------------------------------------------------------------------------------
# Gaussian densities and the analytic KL
# --------------------------------------------------------------------------------------------
def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last dimension (inputs broadcast).

    This is log q_φ(z|x) of §2.1 for the Gaussian encoder q_φ(z|x) = N(z; μ(x), σ(x)).
    """
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension: the prior log p_θ(z) of §2.1."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Analytic KL(q(z|x_i) || N(0, I)) per sample, shape (N,): the KL term of eq. 2.

    KL = ½ Σ_d (μ_d² + σ_d² − 1 − log σ_d²).
    """
    return kl_standard_normal_per_dimension(mu, logvar).sum(-1)


def kl_standard_normal_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The terms of :func:`kl_standard_normal` before the sum over d, shape (N, D):
    KL_d = ½ (μ_d² + σ_d² − 1 − log σ_d²) (what free bits floors, Kingma et al. 2016)."""
    return 0.5 * (mu.pow(2) + torch.exp(logvar) - 1.0 - logvar)


# --------------------------------------------------------------------------------------------
# Softmax (auxiliary classifier) estimators, §3.2–3.3
# --------------------------------------------------------------------------------------------
def _heads(logits: Logits) -> list[torch.Tensor]:
    """The classifier heads as a list of (B, V_k) tensors."""
    if isinstance(logits, torch.Tensor):
        if logits.dim() != 2:
            raise ValueError(f"logits must be (B, V) or a sequence of (B, V) tensors; got shape "
                             f"{tuple(logits.shape)}")
        return [logits]
    heads = list(logits)
    if not heads:
        raise ValueError("logits: empty sequence of heads")
    for h in heads:
        if not isinstance(h, torch.Tensor) or h.dim() != 2:
            raise ValueError("logits: every head must be a (B, V) tensor")
    if len({h.shape[0] for h in heads}) != 1:
        raise ValueError("logits: heads disagree on the batch size")
    return heads


def _head_labels(labels: torch.Tensor, n_heads: int) -> list[torch.Tensor]:
    """Split (B,) or (B, K) labels into one (B,) long tensor per head."""
    if labels.dim() == 1:
        if n_heads != 1:
            raise ValueError(f"labels of shape {tuple(labels.shape)} given for {n_heads} heads; "
                             f"expected (B, {n_heads})")
        return [labels.long()]
    if labels.dim() == 2 and labels.shape[1] == n_heads:
        return [labels[:, k].long() for k in range(n_heads)]
    raise ValueError(f"labels of shape {tuple(labels.shape)} do not match {n_heads} head(s)")


def softmax_entropy(logits: Logits) -> torch.Tensor:
    """Entropy H(s_ω(·|z)) of the classifier's predicted distribution per row, shape (B,): eq. 9.

    With the Bayes-optimal classifier s_ω(e_i|z) = q_φ(x = x_i|z) (eq. 6) this is
    H(q_φ(x|z)). For K heads (§3.3) the fitted q̂(x|z) is the product of the heads'
    distributions, whose entropy is the sum of the heads' entropies.
    """
    total = None
    for h in _heads(logits):
        logp = F.log_softmax(h, dim=-1)
        p = logp.exp()
        # 0·log 0 = 0: a logit of -inf gives p = 0 and log p = -inf; clamping log p keeps both the
        # value and the gradient finite (torch.where would leak NaN into the backward pass).
        ent = -(p * logp.clamp_min(torch.finfo(logp.dtype).min)).sum(-1)
        total = ent if total is None else total + ent
    return total


def softmax_cross_entropy(logits: Logits, labels: torch.Tensor) -> torch.Tensor:
    """SC, eq. 8: −log s_ω(e_i|z) at each row's own label, shape (B,).

    For K heads (§3.3), −log of the product distribution at the label tuple, i.e. the sum of the
    heads' cross-entropies. ``labels``: (B,) for one head, (B, K) for K heads.
    """
    heads = _heads(logits)
    total = None
    for h, y in zip(heads, _head_labels(labels, len(heads))):
        ce = F.cross_entropy(h, y.to(h.device), reduction="none")
        total = ce if total is None else total + ce
    return total


def mutual_information_softmax(logits: Logits, n_labels: int) -> torch.Tensor:
    """Softmax MI estimate, eqs. 5 and 9: log N_eff − mean_z H(s_ω(·|z)) (a scalar).

    ``n_labels`` is N_eff, passed in by the caller (see :func:`effective_label_count`: N for one
    label per sample, V for V shared labels, min(N, V**K) for K heads — the paper bounds the
    label-shared MI by log V in §3.3). The mean over the batch's z ~ q(z|x_i), x_i ~ q(x)
    estimates the expectation over the aggregate posterior q̄(z).
    """
    if n_labels < 1:
        raise ValueError(f"mutual_information_softmax: n_labels must be ≥ 1, got {n_labels}")
    return mutual_information_from_entropy(softmax_entropy(logits).mean(), n_labels)


def mutual_information_from_entropy(mean_entropy, n_labels: int):
    """Eq. 5 from an already computed mean_z H(s_ω(·|z)) (eq. 9): log N_eff − mean entropy.

    For callers that get the entropy from a fused pass (training's routed head) or accumulate
    it over batches (evaluation): a tensor (one value per stacked model) or a float in, the same
    type out, so each caller keeps its own precision.
    """
    return math.log(n_labels) - mean_entropy


def marginal_kl_softmax(kl: torch.Tensor, sc: torch.Tensor, n_labels: int) -> torch.Tensor:
    """Softmax marginal-KL estimate, eq. 10: mean(kl) − log N + mean(sc) (a scalar; for
    (K, B) inputs, the K per-row values).

    Eq. 10 gives log q̄(z) = log q(z|x_i) − log N − log s_ω(e_i|z), so
    KL(q̄ || p) = E[log q(z|x_i) − log N − log s_ω(e_i|z) − log p(z)], and the expectation of
    log q(z|x_i) − log p(z) under z ~ q(z|x_i) is taken with the analytic per-sample KL
    (``kl``, from :func:`kl_standard_normal`); ``sc`` is the per-sample SC of eq. 8
    (:func:`softmax_cross_entropy`). With one label per sample N is the number of training
    samples (q(x = x_i) = 1/N), exactly eq. 10.

    With shared labels (§3.3) the classifier models q(label | z) and the caller chooses the
    constant (``labels.md_constant``, :attr:`vaeas.models.LabelSpec.marginal_count`): N, the
    training-set size (default; exact when the posteriors that share a label are separated, the
    regime of the paper's tables, and what the Monte Carlo estimates support), or N_eff = V, as
    for :func:`mutual_information_softmax` (exact when z carries no information: MD → mean KL,
    and MI + MD = mean KL + (SC − H) for any V). The two differ by the constant log(N / V);
    docs/decisions.md D5 has the closed form and the measurements.

    Evidence for this reading: every VAE-AS row of the paper's Tables 2 and 3 satisfies
    MD = KL_train − log N + SC to ±0.02 with N = 55,000 (MNIST) and N = 24,345 (Omniglot),
    e.g. MNIST α = β = 1: 21.22 − log 55000 + 0.35 = 10.655 (table: 10.66).
    """
    if n_labels < 1:
        raise ValueError(f"marginal_kl_softmax: n_labels must be ≥ 1, got {n_labels}")
    kl = torch.as_tensor(kl)
    sc = torch.as_tensor(sc, device=kl.device)
    # Means over the last (sample) dimension: a scalar for (B,) inputs, one value per model for
    # (K, B) inputs: K models at once.
    mean = lambda t: t.mean(-1) if t.dim() else t
    return mean(kl) - math.log(n_labels) + mean(sc)


# --------------------------------------------------------------------------------------------
# Monte Carlo baseline (Hoffman & Johnson 2016; the paper's Figure 2)
# --------------------------------------------------------------------------------------------
def sample_standard_normal(shape: Sequence[int], generator: torch.Generator | None = None, *,
                           device: torch.device | str | None = None,
                           dtype: torch.dtype | None = None) -> torch.Tensor:
    """N(0, I) noise of ``shape`` on ``device``; drawn with ``generator`` on the generator's own
    device (so a CPU generator also drives CUDA tensors) and moved to ``device``."""
    if generator is None:
        return torch.randn(tuple(shape), device=device, dtype=dtype)
    eps = torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=dtype)
    return eps.to(device) if device is not None else eps


def log_aggregate_posterior(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                            chunk: int = 1024, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """log q̄(z_m) = log (1/S) Σ_j q(z_m|x_j) for each row of z (M, D), over the S posteriors
    (mu, logvar) of shape (S, D); returns (M,) in ``dtype``. The aggregate posterior of §3.1.

    Bounded memory: z is processed in row chunks of ``chunk``; for a chunk z_c (c, D) all S log
    densities come from one matmul, by the expansion

        log q(z|x_j) = Σ_d [−½ z_d² / σ²_jd + z_d μ_jd / σ²_jd] − ½ Σ_d (μ²_jd/σ²_jd + log σ²_jd + log 2π)
                     = [z², z, 1] @ [−½ σ⁻²; μ σ⁻²; −½ Σ_d (…)]ᵀ        ((c, 2D+1) @ (2D+1, S)),

    after centring z and μ on mean_j μ_j, then reduced with an in-place logsumexp over S in one
    reused (chunk, S) buffer. No (M, S, D) tensor is built; peak memory is chunk × S elements
    of ``dtype`` beyond the inputs. The computation runs in ``dtype`` (float64 by default)
    because the expansion cancels catastrophically in float32 when σ is small (terms of order
    z²/σ² cancel down to the O(1) Mahalanobis distance).
    """
    if z.dim() != 2 or mu.dim() != 2 or mu.shape != logvar.shape or z.shape[1] != mu.shape[1]:
        raise ValueError(f"log_aggregate_posterior: expected z (M, D), mu and logvar (S, D); got "
                         f"{tuple(z.shape)}, {tuple(mu.shape)}, {tuple(logvar.shape)}")
    if chunk < 1:
        raise ValueError(f"log_aggregate_posterior: chunk must be ≥ 1, got {chunk}")
    s, d = mu.shape
    device = mu.device
    logvar = logvar.to(dtype)
    # The density is translation invariant; centring on the posteriors' mean shrinks |z| and |μ|
    # and with them the cancellation of the expansion.
    mu = mu.to(dtype)
    centre = mu.mean(0)
    mu = mu - centre
    z = z.to(device=device, dtype=dtype) - centre
    prec = torch.exp(-logvar)                                              # (S, D) 1/σ²
    const = (mu.pow(2) * prec + logvar).sum(-1) + d * LOG_2PI              # (S,)
    rhs = torch.cat([-0.5 * prec, mu * prec, -0.5 * const[:, None]], 1).t().contiguous()  # (2D+1, S)
    # Without autograd, one buffer is reused and reduced in place; with it, out-of-place ops.
    differentiable = torch.is_grad_enabled() and (rhs.requires_grad or z.requires_grad)
    buf = None if differentiable else torch.empty((min(chunk, z.shape[0]), s), device=device, dtype=dtype)
    out = []
    for start in range(0, z.shape[0], chunk):
        zc = z[start:start + chunk]
        lhs = torch.cat([zc.pow(2), zc, torch.ones_like(zc[:, :1])], 1)    # (c, 2D+1)
        if differentiable:
            out.append(torch.logsumexp(lhs @ rhs, dim=1))
            continue
        dens = torch.mm(lhs, rhs, out=buf[:zc.shape[0]])                  # log q(z_c | x_j), (c, S)
        top = dens.amax(1, keepdim=True)
        out.append(dens.sub_(top).exp_().sum(1).log_() + top.squeeze(1))
    if not out:
        return torch.empty(0, device=device, dtype=dtype)
    return torch.cat(out) - math.log(s)


def _mc_terms(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, chunk: int,
              dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample (log q(z_i|x_i), log q̄(z_i), log p(z_i)) in ``dtype``, z aligned with mu."""
    if z.shape != mu.shape:
        raise ValueError(f"z {tuple(z.shape)} must be aligned with mu {tuple(mu.shape)}: one z_i "
                         f"per posterior")
    zd, mud, lvd = (t.to(device=mu.device, dtype=dtype) for t in (z, mu, logvar))
    log_q = log_normal_diag(zd, mud, lvd)
    log_qbar = log_aggregate_posterior(zd, mud, lvd, chunk=chunk, dtype=dtype)
    log_p = log_standard_normal(zd)
    return log_q, log_qbar, log_p


def mutual_information_mc(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                          chunk: int = 1024, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Monte Carlo MI (eq. 4 with q̄ over the S posteriors): mean_i[log q(z_i|x_i) − log q̄(z_i)].

    z (S, D) holds one sample z_i ~ q(z|x_i) per posterior, aligned with mu. Scalar in ``dtype``.
    Per sample, log q(z_i|x_i) − log q̄(z_i) = log S + log q(x = x_i|z_i) with the exact q(x|z)
    of eq. 6 over the same S posteriors, so the estimate is at most log S (and its expectation,
    the MI of the S-component mixture, is ≥ 0); it is the
    Bayes-optimal-classifier value of log S − SC (eq. 8). Biased for S < N (Figure 2).
    """
    log_q, log_qbar, _ = _mc_terms(z, mu, logvar, chunk, dtype)
    return (log_q - log_qbar).mean()


def marginal_kl_mc(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                   chunk: int = 1024, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Monte Carlo marginal KL(q̄(z) || p(z)): mean_i[log q̄(z_i) − log p(z_i)], z_i ~ q(z|x_i)
    (so the z_i are draws from q̄). Scalar in ``dtype``."""
    _, log_qbar, log_p = _mc_terms(z, mu, logvar, chunk, dtype)
    return (log_qbar - log_p).mean()


@torch.no_grad()
def mc_estimates(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                 chunk: int = 1024, dtype: torch.dtype = torch.float64) -> dict[str, float]:
    """MI_MC, MD_MC and KL_MC on the S posteriors (mu, logvar), from one z_i ~ q(z|x_i) each.

    z_i = μ_i + σ_i ⊙ ε_i (reparameterised, ε drawn with ``generator``). All three come from ONE
    evaluation of log q̄(z_i), so ``mi + md == kl`` up to float rounding — the identity of the
    paper's Appendix 7.1 — with KL_MC = mean_i[log q(z_i|x_i) − log p(z_i)], an unbiased MC
    estimate of the analytic mean KL. Returns Python floats {mi, md, kl}.
    """
    eps = sample_standard_normal(mu.shape, generator, device=mu.device, dtype=dtype)
    mud, lvd = mu.to(dtype), logvar.to(dtype)
    z = mud + torch.exp(0.5 * lvd) * eps
    log_q, log_qbar, log_p = _mc_terms(z, mud, lvd, chunk, dtype)
    return {
        "mi": (log_q - log_qbar).mean().item(),
        "md": (log_qbar - log_p).mean().item(),
        "kl": (log_q - log_p).mean().item(),
    }


@torch.no_grad()
def mc_estimates_subsets(mu: torch.Tensor, logvar: torch.Tensor, size: int, repeats: int,
                         generator: torch.Generator | None = None, chunk: int = 1024,
                         dtype: torch.dtype = torch.float64) -> dict:
    """Figure 2's MC baseline at sample size S = ``size``: ``repeats`` runs of :func:`mc_estimates`,
    each on a different uniformly random subset of ``size`` of the N posteriors (without
    replacement, drawn with ``generator``). When size == N every repeat uses all posteriors and
    the repeats differ only in the z draws.

    Returns {mi_mean, mi_sd, md_mean, md_sd, mis, mds}; the SDs are sample SDs (ddof = 1) across
    repeats, 0.0 for a single repeat.
    """
    n = mu.shape[0]
    if not 1 <= size <= n:
        raise ValueError(f"mc_estimates_subsets: size must be in [1, {n}], got {size}")
    if repeats < 1:
        raise ValueError(f"mc_estimates_subsets: repeats must be ≥ 1, got {repeats}")
    mis, mds = [], []
    for _ in range(repeats):
        if size == n:
            m, lv = mu, logvar
        else:
            gdev = generator.device if generator is not None else mu.device
            idx = torch.randperm(n, generator=generator, device=gdev)[:size].to(mu.device)
            m, lv = mu[idx], logvar[idx]
        res = mc_estimates(m, lv, generator, chunk=chunk, dtype=dtype)
        mis.append(res["mi"])
        mds.append(res["md"])

    def _sd(v: list[float]) -> float:
        return float(torch.tensor(v, dtype=torch.float64).std(correction=1)) if len(v) > 1 else 0.0

    return {
        "mi_mean": sum(mis) / len(mis), "mi_sd": _sd(mis),
        "md_mean": sum(mds) / len(mds), "md_sd": _sd(mds),
        "mis": mis, "mds": mds,
    }
