"""One step's loss and its gradients, for any objective of :mod:`vaeas.objectives`.

:func:`loss_terms` runs the run's objective on one binarized batch; :func:`backward` routes the
gradients: θ, φ get ∇loss, ω (the auxiliary classifier, when the objective has one) gets only
∇SC (eq. 8). The routing is built into the graph (``models.RoutedSoftmaxHead``: ``loss`` does not
reach ω and ``sc`` does not reach θ, φ), so one backward pass over both gives each its gradient.
"""

from __future__ import annotations

import torch

from ..models import VAE, LabelSpec
from ..objectives import LossTerms
from ..run import RunSpec


def loss_terms(model: VAE, x: torch.Tensor, labels: torch.Tensor | None, spec: RunSpec,
               label_spec: LabelSpec | None, generator: torch.Generator, progress: float = 0.0) -> LossTerms:
    """Forward pass and the objective of ``spec`` on one binarized batch (its module's ``loss``);
    ``progress`` is the epochs completed before this step (epoch + step / steps)."""
    return spec.definition.loss(model, x, labels, spec.hyper, label_spec, generator, progress)


def backward(terms: LossTerms, params_vae: list, params_cls: list) -> None:
    """θ, φ get ∇loss; ω gets only ∇SC (eq. 8), in one backward pass."""
    if params_cls:
        torch.autograd.backward([terms.loss, terms.sc], inputs=[*params_vae, *params_cls])
    else:
        terms.loss.backward(inputs=params_vae)
