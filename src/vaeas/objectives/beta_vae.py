"""β-VAE (Higgins et al. 2017): recon + β·KL(q(z|x) ‖ p(z)), β on the whole KL, no classifier.

The baseline VAE-AS reduces to (issue "What does VAE-AS add?"): with the softmax MI = log N − SC
and eq. 10's MD = KL − log N + SC, VAE-AS's α·MI + β·MD is β·KL + (α − β)·MI + const, so at α = 1
it is this objective plus (1 − β)·MI. β = 1 is the ELBO (eq. 2) exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import LossTerms, Objective, no_classifier_terms, reconstruction_and_kl


@dataclass(frozen=True)
class Params:
    beta: float = 1.0      #: weight of the KL term


def loss(model, x, labels, params: Params, label_spec, noise, progress: float) -> LossTerms:
    recon, kl, _, _ = reconstruction_and_kl(model, x, noise)
    return no_classifier_terms(recon + params.beta * kl, recon, kl)


OBJECTIVE = Objective(
    name="beta_vae", label="β-VAE", summary="recon + β·KL (Higgins et al. 2017)", params=Params, loss=loss, order=10,
    inert=("labels", "training.classifier_lr", "training.classifier_steps"),
)
