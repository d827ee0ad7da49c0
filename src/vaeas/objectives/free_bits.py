"""Free bits (Kingma et al. 2016, "Improved variational inference with inverse autoregressive
flow", eq. 15): recon + Σ_d max(λ, E_batch[KL_d]), no classifier.

Each latent dimension's KL, averaged over the minibatch, is floored at λ nats: below the floor a
dimension's KL gets no gradient, so the encoder is not pushed to collapse it — the standard remedy
for inactive units VAE-AS is compared with (issue "What does VAE-AS add?"). λ = 0 is the ELBO
(eq. 2) up to the order of the sums. The logged ``kl`` is the true KL, not the floored one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import LossTerms, Objective, no_classifier_terms, reconstruction


@dataclass(frozen=True)
class Params:
    lam: float = 0.0       #: λ, the floor of each latent dimension's batch-mean KL (nats)


def loss(model, x, labels, params: Params, label_spec, noise, progress: float) -> LossTerms:
    from ..estimators import kl_standard_normal_per_dimension

    mu, logvar, _, recon = reconstruction(model, x, noise)
    kl_d = kl_standard_normal_per_dimension(mu, logvar)                 # (B, D)
    floored = kl_d.mean(-2).clamp(min=params.lam).sum(-1)
    return no_classifier_terms(recon + floored, recon, kl_d.sum(-1).mean(-1))


OBJECTIVE = Objective(
    name="free_bits", label="free bits", summary="recon + Σ_d max(λ, batch-mean KL_d) (Kingma et al. 2016)",
    params=Params, loss=loss, order=20,
    inert=("labels", "training.classifier_lr", "training.classifier_steps"),
)
