"""The networks of VAE and VAE-AS (§2.1, §3.2, Fig. 1) and the fixed softmax labels (§3.2–3.3).

* Encoder q_φ(z|x) = N(μ(x), diag σ²(x)), an MLP returning (μ, log σ²).
* Decoder p_θ(x|z): Bernoulli, an MLP returning pixel logits.
* Auxiliary classifier s_ω(e|z): an MLP with softmax output over the labels; with several heads
  (§3.3) it returns one logit tensor per head and q̂(x|z) is the product of the heads.

"Layers 2, 5, 2" in §5.3 (and "2, 3, 2" in §5.2) is read as the number of hidden layers of 500
units of the encoder, decoder and classifier (docs/decisions.md).

Training does not go through :meth:`Classifier.forward`: :meth:`Classifier.routed_statistics`
returns the softmax entropy (eq. 9) and cross-entropy (eq. 8) directly, from one fused output
layer (:class:`RoutedSoftmaxHead`) whose backward pass routes eq. 3's gradient to z and eq. 8's
to ω in one sweep over the 500 × N weight (docs/performance.md).
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

    def routed_statistics(self, z: torch.Tensor, labels: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sample (H, CE, SC) of s_ω(·|z) with the gradient routing of eqs. 3 and 8.

        H = H(s_ω(·|z)) (eq. 9) and CE = −log s_ω(e_i|z) (eq. 8), summed over the heads as in
        :func:`vaeas.estimators.softmax_entropy` / :func:`~vaeas.estimators.softmax_cross_entropy`.
        H and CE carry gradient to z only (ω held fixed: the MI and MD terms of eq. 3 train θ, φ);
        SC has CE's values and carries gradient to ω only (eq. 8 trains the classifier alone).
        So one ``backward`` of ``loss + mean(SC)`` gives every parameter its own gradient.

        The trunk runs twice (once with ω detached, once with z detached: two small 500-wide
        layers), so that each route's gradient goes down its own copy; the 500 × N output layer
        runs once, fused with the softmax statistics, in :class:`RoutedSoftmaxHead`.
        """
        trunk, head = self.net[:-1], self.net[-1]
        frozen = {name: p.detach() for name, p in trunk.named_parameters()}
        h_obj = torch.func.functional_call(trunk, frozen, (z,))
        h_sc = trunk(z.detach())
        labels = labels.reshape(z.shape[0], self.heads).long()
        return RoutedSoftmaxHead.apply(h_obj, h_sc, head.weight, head.bias, labels, self.heads)


class RoutedSoftmaxHead(torch.autograd.Function):
    """The classifier's output layer and its softmax statistics, fused, with routed gradients.

    Inputs: ``h_obj`` and ``h_sc`` (B, H), the same trunk activations reached along the two
    gradient routes; ``weight`` (K·V, H) and ``bias`` (K·V,) of the output layer; ``labels``
    (B, K); ``heads`` = K. Forward, with l = h W^T + b split into K heads of V logits and
    p = softmax(l) per head:

        H  = Σ_k [logsumexp(l_k) − Σ_v p_kv l_kv]       (eq. 9: −Σ p log p, since Σ p = 1)
        CE = Σ_k [logsumexp(l_k) − l_k,y_k]             (eq. 8)
        SC = CE (same values)

    Backward, from the closed forms dH/dl = −p ⊙ (log p + H_k) = −p ⊙ (l − E_p[l]) and
    dCE/dl = p − onehot(y):

        δ_obj = ḡ_H · dH/dl + ḡ_CE · dCE/dl   → ∂/∂h_obj = δ_obj W    (the route to z)
        δ_sc  = ḡ_SC · dCE/dl                 → ∂/∂h_sc = δ_sc W, ∂/∂W = δ_sc^T h_sc, ∂/∂b = Σ δ_sc

    The two (B, K·V) @ (K·V, H) products are one stacked (2B, K·V) @ (K·V, H) matmul (one pass
    over W). Three matmuls, four products' FLOPs (4 × 2·B·H·K·V), are the minimum: the forward,
    the weight gradient of eq. 8, and the two input gradients eqs. 3 and 8 need (dH/dl is no
    multiple of dCE/dl, so ∇(α·MI + β·MD) and ∇SC at h are different vectors).

    Elementwise work is kept to few passes over the (B, K·V) logits: the softmax stays
    unnormalised (e = exp(l − max l), its row sums folded into per-row scalars), and each δ is
    written once. Softmax statistics are computed in float32 whatever the matmul dtype (bf16
    under autocast, as autocast does for log_softmax). Logits must be finite (an output layer's
    always are).
    """

    @staticmethod
    def forward(ctx, h_obj, h_sc, weight, bias, labels, heads):
        device_type = h_sc.device.type
        dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else weight.dtype
        with torch.autocast(device_type=device_type, enabled=False):
            if h_sc.dim() == 2:
                logits = torch.addmm(bias.to(dtype), h_sc.to(dtype), weight.to(dtype).t())
            else:                                                    # (K, B, H): K models stacked
                logits = torch.baddbmm(bias.to(dtype).unsqueeze(-2), h_sc.to(dtype), weight.to(dtype).mT)
        logits = logits.float().unflatten(-1, (heads, -1))           # (…, B, K, V), float32
        top = logits.amax(-1, keepdim=True)
        e = (logits - top).exp_()                                    # unnormalised softmax
        norm = e.sum(-1)                                             # (…, B, K)
        mean_logit = torch.linalg.vecdot(e, logits) / norm           # E_p[l]
        lse = norm.log() + top.squeeze(-1)                           # logsumexp
        ce = (lse - logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1)).sum(-1)
        entropy = (lse - mean_logit).sum(-1)
        ctx.save_for_backward(h_sc, weight, logits, e, norm, mean_logit, labels)
        ctx.dtypes = (dtype, h_obj.dtype, h_sc.dtype, bias.dtype)
        return entropy, ce, ce.clone()

    @staticmethod
    def backward(ctx, g_entropy, g_ce, g_sc):
        h_sc, weight, logits, e, norm, mean_logit, labels = ctx.saved_tensors
        dtype, obj_dtype, sc_dtype, bias_dtype = ctx.dtypes
        *stack, b, heads, classes = e.shape
        delta = e.new_empty((*stack, 2, b, heads, classes))
        obj, sc = delta.select(-4, 0), delta.select(-4, 1)
        g_entropy, g_ce, g_sc = (g.reshape(*stack, b, 1, 1) for g in (g_entropy, g_ce, g_sc))
        inv = (1.0 / norm).unsqueeze(-1)                            # p = e / norm
        # δ_obj = p ⊙ (ḡ_CE − ḡ_H (l − E_p l)) − ḡ_CE onehot = e ⊙ (a + c l) − ḡ_CE onehot
        a, c = (g_ce + g_entropy * mean_logit.unsqueeze(-1)) * inv, -g_entropy * inv
        torch.addcmul(a, logits, c, out=obj).mul_(e)
        # δ_sc = ḡ_SC (p − onehot)
        torch.mul(e, g_sc * inv, out=sc)
        hot = labels.unsqueeze(-1)
        obj.scatter_add_(-1, hot, -g_ce.expand(*stack, b, heads, 1))
        sc.scatter_add_(-1, hot, -g_sc.expand(*stack, b, heads, 1))
        delta = delta.view(*stack, 2 * b, heads * classes).to(dtype)
        grad_h = torch.matmul(delta, weight.to(dtype))              # (…, 2B, H): both routes at once
        delta_sc = delta[..., b:, :]
        grad_w = torch.matmul(delta_sc.mT, h_sc.to(dtype)).to(weight.dtype)
        grad_b = delta_sc.sum(-2).to(bias_dtype)
        return (grad_h[..., :b, :].to(obj_dtype), grad_h[..., b:, :].to(sc_dtype), grad_w, grad_b,
                None, None)


def init_glorot(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every linear layer: the default of Keras and
    TensorFlow, which the paper's code most likely used (it states none). PyTorch's default,
    U(±1/√fan_in), keeps a third of the variance per tanh layer; through the decoder's five
    layers the signal from z shrinks ~15× and training sits on the "ignore z" plateau for
    thousands of steps (docs/regime.md, decision D22). Draws from torch's global generator,
    which :func:`vaeas.training.loop.build_model` seeds with the run's seed."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


class VAE(nn.Module):
    """Encoder, decoder and (for VAE-AS) the auxiliary classifier; ``classifier`` is None for VAE."""

    def __init__(self, data_dim: int, cfg: ModelConfig, classes: int = 0, heads: int = 1):
        super().__init__()
        self.data_dim = data_dim
        self.encoder = Encoder(data_dim, cfg)
        self.decoder = Decoder(data_dim, cfg)
        self.classifier = Classifier(cfg, classes, heads) if classes > 0 else None
        if cfg.init == "glorot":
            init_glorot(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def classify(self, z: torch.Tensor) -> list[torch.Tensor]:
        if self.classifier is None:
            raise RuntimeError("this model has no auxiliary classifier (its objective has none)")
        return self.classifier(z)

    def vae_parameters(self) -> list[nn.Parameter]:
        """θ and φ: what the VAE-AS objective (eq. 3) trains."""
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def classifier_parameters(self) -> list[nn.Parameter]:
        """ω: trained only by the softmax cross-entropy (eq. 8)."""
        return [] if self.classifier is None else list(self.classifier.parameters())


def effective_label_count(n_samples: int, classes: int, heads: int = 1) -> int:
    """N_eff, the number of equiprobable labels whose log is the MI's ceiling in eq. 5.

    * one label per sample (``classes == n_samples``, ``heads == 1``): N;
    * V < N shared labels, one head: V;
    * K heads of V classes: min(N, V**K).

    Reason: with labels e(x) the classifier fits q(e|z), whose entropy is at most log(#labels),
    so the softmax estimate log N_eff − E H(s_ω(·|z)) must use the label count in place of N to
    lie in [0, log N_eff]. The paper says this in §3.3 ("The maximum mutual information that we
    can provide by using the V tag category ... is log V"), while Appendix 7.2 bounds the MI by
    log N; K heads can tell apart at most V**K label tuples but there are only N samples, hence
    the minimum.

    Caveats. With shared labels the Bayes-optimal value log V − E H(q(e|z)) is I(z; e) ≤ I(z; x)
    (data processing): accurate when posteriors overlap heavily, but capped at log V, so it
    underestimates a large MI when the posteriors sharing a label are well separated (there
    log N − E H(q(e|z)) is the accurate one, as it is for eq. 10's MD, which always uses N).
    N_eff only shifts the MI by a constant, so it never changes a gradient of eq. 3.
    """
    for name, v in (("n_samples", n_samples), ("classes", classes), ("heads", heads)):
        if int(v) != v or v < 1:
            raise ValueError(f"effective_label_count: {name} must be a positive integer, got {v!r}")
    return int(min(int(n_samples), int(classes) ** int(heads)))


@dataclass(frozen=True)
class LabelSpec:
    """The fixed labels of the N training samples: ``labels`` is (N,) or (N, heads)."""

    labels: torch.Tensor
    classes: int
    heads: int
    n_samples: int
    md_constant: str = "n"

    @property
    def effective_count(self) -> int:
        """Distinct label values in use: the N_eff of MI = log N_eff − E[H] (§3.3)."""
        return effective_label_count(self.n_samples, self.classes, self.heads)

    @property
    def marginal_count(self) -> int:
        """The count whose log eq. 10 subtracts: N (``md_constant: n``, the paper's text and the
        Monte Carlo evidence of docs/decisions.md D5) or N_eff (``n_eff``). The same for one label
        per sample."""
        return self.n_samples if self.md_constant == "n" else self.effective_count


def make_labels(n_samples: int, cfg: LabelConfig) -> LabelSpec:
    """Assign every training sample its fixed label(s) (§3.2–3.3).

    * ``full``: V = N classes, sample i gets label i (eq. 7's one-hot e⁽ⁱ⁾).
    * ``shared``: V < N classes, a seeded random balanced assignment (label = π(i) mod V for a
      random permutation π), so each label covers ⌊N/V⌋ or ⌈N/V⌉ samples.
    * ``multihead``: K heads of V classes; the K labels of sample i are the base-V digits of π(i),
      so the label tuples are all distinct whenever V**K ≥ N (the Cartesian product of §3.3).
    """
    if cfg.scheme == "full":
        return LabelSpec(torch.arange(n_samples), n_samples, 1, n_samples, cfg.md_constant)
    gen = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(n_samples, generator=gen)
    if cfg.scheme == "shared":
        return LabelSpec(perm % cfg.classes, cfg.classes, 1, n_samples, cfg.md_constant)
    powers = cfg.classes ** torch.arange(cfg.heads)
    digits = (perm[:, None] // powers[None, :]) % cfg.classes
    return LabelSpec(digits, cfg.classes, cfg.heads, n_samples, cfg.md_constant)
