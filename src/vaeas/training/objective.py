"""The objectives of eq. 2 (VAE: the negative ELBO) and eq. 3 (VAE-AS), and their gradients.

θ, φ (encoder, decoder) minimise  recon + α·MI + β·MD  (eq. 3, with MI from eqs. 5/9 and MD
from eq. 10); ω (classifier) minimises only SC (eq. 8). Both gradients come from one forward
pass: the routing is built into the graph (``models.RoutedSoftmaxHead``) and :func:`backward`
asks for each loss's gradient with respect to its own parameters. MI and MD are the tested
functions of :mod:`vaeas.estimators`, called here, not re-typed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..data import DATASETS
from ..errors import VaeasError
from ..estimators import kl_standard_normal, marginal_kl_softmax, mutual_information_from_entropy
from ..metrics import bernoulli_log_likelihood
from ..models import VAE, LabelSpec

OBJECTIVES = ("vae", "vaeas")
LOG_COLUMNS = ("epoch", "loss", "recon", "kl", "mi", "md", "sc", "entropy", "seconds")
LOGGED = LOG_COLUMNS[1:8]


@dataclass(frozen=True)
class RunSpec:
    """What distinguishes one training job of the grid from another."""

    dataset: str
    objective: str = "vaeas"
    alpha: float = 1.0
    beta: float = 1.0
    seed: int = 0

    def validate(self) -> None:
        if self.dataset not in DATASETS:
            raise VaeasError(f"unknown data set '{self.dataset}' (choose from: {', '.join(sorted(DATASETS))})")
        if self.objective not in OBJECTIVES:
            raise VaeasError(f"unknown objective '{self.objective}' (choose from: vae, vaeas)")
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise VaeasError(f"--{name} must be a finite number >= 0, got {value}")
        if self.seed < 0:
            raise VaeasError(f"--seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class StackedSpec:
    """What :func:`loss_terms` reads of a RunSpec, for K stacked runs: α and β as (K,) tensors."""

    objective: str
    alpha: torch.Tensor
    beta: torch.Tensor


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
    mi = mutual_information_from_entropy(entropy_per_sample.mean(-1), n_eff)   # eqs. 5, 9
    md = marginal_kl_softmax(kl_per_sample, ce_per_sample, label_spec.marginal_count)  # eq. 10, D5
    loss = recon + spec.alpha * mi + spec.beta * md
    # The logged mean entropy is read back from MI (log N_eff − MI), as the log has always done.
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
