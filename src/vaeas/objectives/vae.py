"""The VAE baseline: the negative ELBO of eq. 2, recon + KL(q(z|x) ‖ p(z)), no classifier."""

from __future__ import annotations

from dataclasses import dataclass

from .base import LossTerms, Objective, no_classifier_terms, reconstruction_and_kl


@dataclass(frozen=True)
class Params:
    """The ELBO has no hyper-parameter."""


def loss(model, x, labels, params: Params, label_spec, noise, progress: float) -> LossTerms:
    recon, kl, _, _ = reconstruction_and_kl(model, x, noise)
    return no_classifier_terms(recon + kl, recon, kl)


OBJECTIVE = Objective(
    order=0, name="vae", label="VAE", summary="the negative ELBO, recon + KL (eq. 2)", params=Params, loss=loss,
    # No classifier: its labels and settings cannot change the model.
    inert=("labels", "training.classifier_lr", "training.classifier_steps"),
)
