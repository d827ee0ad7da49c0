"""KL annealing (Bowman et al. 2016, "Generating sentences from a continuous space"):
recon + w·KL with the weight w warmed up linearly from 0 to 1 over the first ``warmup`` epochs,
then held at 1 (the ELBO, eq. 2), no classifier.

w = min(1, progress / warmup), where progress is the epochs completed before the step (0 at the
first step, so the run starts as a plain autoencoder). ``warmup = 0`` is the ELBO throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import LossTerms, Objective, no_classifier_terms, reconstruction_and_kl


@dataclass(frozen=True)
class Params:
    warmup: int = 0        #: epochs over which the KL weight rises linearly from 0 to 1


def kl_weight(params: Params, progress: float) -> float:
    """The weight of the KL term at ``progress`` epochs."""
    return 1.0 if params.warmup == 0 else min(1.0, progress / params.warmup)


def loss(model, x, labels, params: Params, label_spec, noise, progress: float) -> LossTerms:
    recon, kl, _, _ = reconstruction_and_kl(model, x, noise)
    return no_classifier_terms(recon + kl_weight(params, progress) * kl, recon, kl)


OBJECTIVE = Objective(
    name="kl_annealing", label="KL annealing", summary="recon + min(1, epoch / warmup)·KL (Bowman et al. 2016)",
    params=Params, loss=loss, order=30,
    inert=("labels", "training.classifier_lr", "training.classifier_steps"),
)
