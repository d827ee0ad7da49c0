"""The networks of VAE and VAE-AS (§2.1, §3.2, Fig. 1) and the fixed softmax labels (§3.2–3.3).

* Encoder q_φ(z|x) = N(μ(x), diag σ²(x)), an MLP returning (μ, log σ²).
* Decoder p_θ(x|z): Bernoulli, an MLP returning pixel logits.
* Auxiliary classifier s_ω(e|z): an MLP with softmax output over the labels; with several heads
  (§3.3) it returns one logit tensor per head and q̂(x|z) is the product of the heads.

"Layers 2, 5, 2" in §5.3 (and "2, 3, 2" in §5.2) is read as the number of hidden layers of 500
units of the encoder, decoder and classifier (docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import LabelConfig, ModelConfig

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus, "elu": nn.ELU}


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int, activation: str) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden`` with ``activation``, then a linear output."""
    modules: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
        width = hidden
    modules.append(nn.Linear(width, out_dim))
    return nn.Sequential(*modules)


class Encoder(nn.Module):
    """q_φ(z|x) = N(μ(x), diag exp(logvar(x)))."""

    def __init__(self, data_dim: int, cfg: ModelConfig):
        super().__init__()
        self.net = mlp(data_dim, cfg.hidden_units, cfg.encoder_layers, 2 * cfg.latent_dim, cfg.activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=-1)
        return mu, logvar


class Decoder(nn.Module):
    """p_θ(x|z), Bernoulli: returns the logits of the pixel probabilities."""

    def __init__(self, data_dim: int, cfg: ModelConfig):
        super().__init__()
        self.net = mlp(cfg.latent_dim, cfg.hidden_units, cfg.decoder_layers, data_dim, cfg.activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Classifier(nn.Module):
    """s_ω(e|z) (eq. 7): ``heads`` softmax heads of ``classes`` labels each on a shared MLP trunk.

    Returns a list of ``heads`` logit tensors of shape (..., classes).
    """

    def __init__(self, cfg: ModelConfig, classes: int, heads: int = 1):
        super().__init__()
        self.classes, self.heads = classes, heads
        self.net = mlp(cfg.latent_dim, cfg.hidden_units, cfg.classifier_layers, classes * heads, cfg.activation)

    def forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        return list(self.net(z).split(self.classes, dim=-1))


class VAE(nn.Module):
    """Encoder, decoder and (for VAE-AS) the auxiliary classifier; ``classifier`` is None for VAE."""

    def __init__(self, data_dim: int, cfg: ModelConfig, classes: int = 0, heads: int = 1):
        super().__init__()
        self.data_dim = data_dim
        self.encoder = Encoder(data_dim, cfg)
        self.decoder = Decoder(data_dim, cfg)
        self.classifier = Classifier(cfg, classes, heads) if classes > 0 else None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def classify(self, z: torch.Tensor) -> list[torch.Tensor]:
        if self.classifier is None:
            raise RuntimeError("this model has no auxiliary classifier (objective 'vae')")
        return self.classifier(z)

    def vae_parameters(self) -> list[nn.Parameter]:
        """θ and φ: what the VAE-AS objective (eq. 3) trains."""
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def classifier_parameters(self) -> list[nn.Parameter]:
        """ω: trained only by the softmax cross-entropy (eq. 8)."""
        return [] if self.classifier is None else list(self.classifier.parameters())


@dataclass(frozen=True)
class LabelSpec:
    """The fixed labels of the N training samples: ``labels`` is (N,) or (N, heads)."""

    labels: torch.Tensor
    classes: int
    heads: int
    n_samples: int

    @property
    def effective_count(self) -> int:
        """Distinct label values in use: the N_eff of MI = log N_eff − E[H] (§3.3)."""
        return min(self.n_samples, self.classes ** self.heads)


def make_labels(n_samples: int, cfg: LabelConfig) -> LabelSpec:
    """Assign every training sample its fixed label(s) (§3.2–3.3).

    * ``full``: V = N classes, sample i gets label i (eq. 7's one-hot e⁽ⁱ⁾).
    * ``shared``: V < N classes, a seeded random balanced assignment (label = π(i) mod V for a
      random permutation π), so each label covers ⌊N/V⌋ or ⌈N/V⌉ samples.
    * ``multihead``: K heads of V classes; the K labels of sample i are the base-V digits of π(i),
      so the label tuples are all distinct whenever V**K ≥ N (the Cartesian product of §3.3).
    """
    if cfg.scheme == "full":
        return LabelSpec(torch.arange(n_samples), n_samples, 1, n_samples)
    gen = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(n_samples, generator=gen)
    if cfg.scheme == "shared":
        return LabelSpec(perm % cfg.classes, cfg.classes, 1, n_samples)
    powers = cfg.classes ** torch.arange(cfg.heads)
    digits = (perm[:, None] // powers[None, :]) % cfg.classes
    return LabelSpec(digits, cfg.classes, cfg.heads, n_samples)
