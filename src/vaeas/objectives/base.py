"""What every training objective declares, in one place (pythae's one-folder-per-model): the
:class:`Objective` record each module of :mod:`vaeas.objectives` defines, and the
:class:`LossTerms` its loss returns.

An objective is a minimised quantity of one binarized batch. It says:

* its **hyper-parameters**: a frozen dataclass whose fields (floats, with defaults) are the keys
  a run entry of params.yaml may carry beside ``objective:`` (``alpha: 0.5``), validated by the
  schema fragment :meth:`Objective.schema` derives from it;
* whether it **needs the auxiliary classifier** and its fixed labels;
* its **loss** (:data:`LossFn`): the named terms of :class:`LossTerms` (every one is logged:
  those it does not compute are NaN) and which of them each parameter group minimises;
* the configuration keys that are **inert** for it (they cannot change its outputs).

The registry (:mod:`vaeas.objectives`) maps names to these records; no module outside
``objectives/`` compares an objective's name.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import VaeasError

if TYPE_CHECKING:   # importing the registry does not import torch: Snakemake reads it at parse time
    import torch

#: The per-epoch log's columns: every objective logs the same ones (NaN where it has no such term).
LOG_COLUMNS = ("epoch", "loss", "recon", "kl", "mi", "md", "sc", "entropy", "seconds")
LOGGED = LOG_COLUMNS[1:8]


@dataclass
class LossTerms:
    """Per-batch means of the quantities the paper reports (nats per sample). ``loss`` is what
    θ, φ minimise; ``sc`` (eq. 8) what ω minimises when there is a classifier."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    mi: torch.Tensor
    md: torch.Tensor
    sc: torch.Tensor
    entropy: torch.Tensor


#: loss(model, x, labels, params, label_spec, noise, progress) -> LossTerms. ``params`` is the
#: objective's hyper-parameter dataclass; ``progress`` the epochs completed before this step
#: (epoch + step / steps per epoch: 0 at the first step), for objectives with a schedule.
LossFn = Callable[..., LossTerms]


@dataclass(frozen=True)
class Objective:
    name: str                      #: the value of ``objective:`` in params.yaml
    label: str                     #: how tables and figures name it ("VAE-AS")
    summary: str                   #: one line: what is minimised (CLI help, docs)
    params: type                   #: frozen dataclass of hyper-parameters (float fields with defaults)
    loss: LossFn
    needs_classifier: bool = False
    #: Keys (``section.key`` or a whole ``section``) that cannot change this objective's outputs.
    inert: tuple[str, ...] = ()
    #: Keys inert only when every training sample has its own label (labels.scheme 'full').
    inert_with_full_labels: tuple[str, ...] = ()
    #: Log columns whose curves mean something for it (the loss and its terms); others are NaN.
    curves: tuple[str, ...] = ("loss", "recon", "kl")
    #: Where tables and lists put it (lower first; ties by name): the paper's two methods first.
    order: int = 100

    # ---- hyper-parameters --------------------------------------------------------------
    def param_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.params))

    def schema(self) -> dict:
        """The JSON-schema fragment of a run entry's hyper-parameters, derived from the dataclass:
        a ``float`` field is a number >= 0, an ``int`` field an integer >= 0."""
        return {f.name: {"type": "integer" if f.type in ("int", int) else "number", "minimum": 0}
                for f in dataclasses.fields(self.params)}

    def make_params(self, values: Mapping[str, Any], where: str = "") -> Any:
        """The hyper-parameter dataclass from ``values`` (missing keys take their defaults),
        checked against :meth:`schema`. An error is one line naming the value as ``where`` says:
        ``where`` with ``{}`` is a pattern for the key (``--{}`` names a flag, ``params.yaml:
        experiments.table2.runs.a1_b1.{}`` a key of the file); otherwise a prefix."""
        name_of = key_namer(where)
        schema = self.schema()
        unknown = sorted(set(values) - set(schema))
        if unknown:
            allowed = ", ".join(schema) or "none"
            raise VaeasError(f"{name_of(unknown[0])}: not a hyper-parameter of objective '{self.name}' (its hyper-parameters: {allowed})")
        out = {}
        for key, value in values.items():
            integer = schema[key]["type"] == "integer"
            ok = (not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
                  and math.isfinite(value) and value >= 0)
            if not ok:
                kind = "an integer" if integer else "a finite number"
                raise VaeasError(f"{name_of(key)} must be {kind} >= 0, got {value!r}")
            out[key] = int(value) if integer else float(value)
        return self.params(**out)

    def as_dict(self, params: Any) -> dict[str, float]:
        return dataclasses.asdict(params)

    def describe(self, params: Mapping[str, float]) -> str:
        """``VAE-AS α=1 β=0.5``: the label and the hyper-parameters, as tables print them."""
        shown = " ".join(f"{_SYMBOL.get(k, k)}={v:g}" for k, v in params.items())
        return f"{self.label} {shown}".strip()


def key_namer(where: str) -> Callable[[str], str]:
    """How an error names a key: ``where`` with ``{}`` is a pattern (``--{}``: a flag), else a
    prefix (a file: ``config.json: beta``), else the bare key."""
    if "{}" in where:
        return where.format
    return (lambda key: f"{where}: {key}") if where else (lambda key: key)


_SYMBOL = {"alpha": "α", "beta": "β", "lam": "λ"}


def reparameterise(model, x: torch.Tensor, noise) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(μ, log σ², z) of one batch: z = μ + σ ε, ε ~ N(0, I) drawn by :func:`standard_normal`."""
    import torch

    mu, logvar = model.encode(x)
    return mu, logvar, mu + torch.exp(0.5 * logvar) * standard_normal(mu, noise)


def reconstruction(model, x: torch.Tensor, noise) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(μ, log σ², z, −log p(x|z) averaged over the batch), one z per sample."""
    from ..metrics import bernoulli_log_likelihood

    mu, logvar, z = reparameterise(model, x, noise)
    return mu, logvar, z, -bernoulli_log_likelihood(model.decode(z), x).mean(-1)


def reconstruction_and_kl(model, x: torch.Tensor, noise):
    """What most objectives here start from: −log p(x|z) and KL(q(z|x) ‖ p(z)) per sample, with
    one z per sample; returns (recon mean, kl mean, kl per sample, z)."""
    from ..estimators import kl_standard_normal

    mu, logvar, z, recon = reconstruction(model, x, noise)
    kl_per_sample = kl_standard_normal(mu, logvar)
    return recon, kl_per_sample.mean(-1), kl_per_sample, z


def standard_normal(mu: torch.Tensor, generator: torch.Generator | list[torch.Generator]) -> torch.Tensor:
    """ε ~ N(0, I) shaped like ``mu``; with one generator per stacked model (mu (K, B, D)), slice
    k is drawn with generator k, exactly as model k's own run would draw it."""
    import torch

    if isinstance(generator, torch.Generator):
        return torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return torch.stack([torch.randn(mu.shape[1:], generator=g, device=mu.device, dtype=mu.dtype)
                        for g in generator])


def no_classifier_terms(loss: torch.Tensor, recon: torch.Tensor, kl: torch.Tensor) -> LossTerms:
    """The terms of an objective without a classifier: MI, MD, SC and the entropy are NaN."""
    import torch

    nan = torch.full_like(kl, float("nan"))
    return LossTerms(loss, recon, kl, nan, nan, nan, nan)
