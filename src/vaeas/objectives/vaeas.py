"""VAE-AS (eq. 3): θ, φ minimise recon + α·MI + β·MD; the auxiliary classifier's ω minimises SC.

MI is eqs. 5 / 9 (log N_eff − mean softmax entropy), MD eq. 10 (KL − log N + SC, with the
constant of docs/decisions.md D5); both are the tested functions of :mod:`vaeas.estimators`,
called here, not re-typed. H and CE reach z only (ω held fixed), SC reaches ω only: the routing of
eqs. 3 and 8 is built into the graph (``models.RoutedSoftmaxHead``), so one backward pass serves
both losses (:func:`vaeas.training.loop.backward`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import LossTerms, Objective, reconstruction_and_kl


@dataclass(frozen=True)
class Params:
    alpha: float = 1.0     #: weight of MI in eq. 3
    beta: float = 1.0      #: weight of MD in eq. 3


def loss(model, x, labels, params: Params, label_spec, noise, progress: float) -> LossTerms:
    from ..estimators import marginal_kl_softmax, mutual_information_from_entropy

    recon, kl, kl_per_sample, z = reconstruction_and_kl(model, x, noise)
    n_eff = label_spec.effective_count
    entropy_per_sample, ce_per_sample, sc_per_sample = model.classifier.routed_statistics(z, labels)
    mi = mutual_information_from_entropy(entropy_per_sample.mean(-1), n_eff)              # eqs. 5, 9
    md = marginal_kl_softmax(kl_per_sample, ce_per_sample, label_spec.marginal_count)      # eq. 10, D5
    total = recon + params.alpha * mi + params.beta * md
    # The logged mean entropy is read back from MI (log N_eff − MI), as the log has always done.
    return LossTerms(total, recon, kl, mi, md, sc_per_sample.mean(-1), math.log(n_eff) - mi)


OBJECTIVE = Objective(
    order=1, name="vaeas", label="VAE-AS", summary="recon + α·MI + β·MD with the auxiliary softmax classifier (eq. 3)",
    params=Params, loss=loss, needs_classifier=True,
    # With one label per sample log N = log N_eff: eq. 10's constant cannot matter.
    inert_with_full_labels=("labels.md_constant",),
    curves=("loss", "recon", "kl", "mi", "md", "sc"),
)
