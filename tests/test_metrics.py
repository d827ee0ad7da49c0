"""Ground-truth tests of vaeas.metrics: Bernoulli likelihood, IW-NLL, active units, mean KL."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, MultivariateNormal, Normal

from vaeas.estimators import kl_standard_normal
from vaeas.metrics import (
    active_unit_variances,
    active_units,
    bernoulli_log_likelihood,
    iw_log_likelihood,
    iw_nll,
    mean_kl,
)

from tolerance import sum_bound

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- Bernoulli
def test_bernoulli_log_likelihood_matches_torch_and_is_stable():
    g = _gen(0)
    logits = torch.randn(3, 4, 20, generator=g, dtype=F64) * 5
    x = (torch.rand(4, 20, generator=g) < 0.5).to(F64)
    ref = Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum(-1)
    got = bernoulli_log_likelihood(logits, x)  # broadcasts (3, 4, 20) against (4, 20)
    assert got.shape == (3, 4)
    # Two float64 formulas of a 20-term sum of terms |x·l − softplus(l)| ≤ |l| + log 2, each
    # term ≤ 4 roundings (exp, log1p within an ulp): tolerance.py's bound, twice.
    mag = (logits.abs() + math.log(2)).sum(-1).max().item()
    torch.testing.assert_close(got, ref, rtol=0, atol=2 * sum_bound(20 + 4, mag, F64))
    # Extreme logits stay finite and exact: log σ(-200) = -200, log σ(200) ≈ 0.
    big = torch.tensor([[200.0, -200.0]])
    torch.testing.assert_close(bernoulli_log_likelihood(big, torch.tensor([[1.0, 1.0]])),
                               torch.tensor([-200.0]))
    torch.testing.assert_close(bernoulli_log_likelihood(big, torch.tensor([[1.0, 0.0]])),
                               torch.tensor([0.0]))


# ----------------------------------------------------------------------------- IW log-likelihood
def test_iw_log_likelihood_reference():
    g = _gen(1)
    lj = torch.randn(50, 6, generator=g, dtype=F64) - 100.0
    lq = torch.randn(50, 6, generator=g, dtype=F64)
    ref = torch.log(torch.exp(lj + 100.0 - lq).mean(0)) - 100.0
    # log-mean-exp of 50 float64 terms of magnitude ≤ 105, two formulas: ≤ γ_54 of it each.
    torch.testing.assert_close(iw_log_likelihood(lj, lq), ref, rtol=0, atol=2 * sum_bound(50 + 4, 105.0, F64))
    torch.testing.assert_close(iw_log_likelihood(lj[:1], lq[:1]), (lj - lq)[0])  # k = 1: the ELBO term
    # Jensen: log-mean-exp ≥ mean.
    assert (iw_log_likelihood(lj, lq) >= (lj - lq).mean(0)).all()


# ----------------------------------------------------------------------------- IW-NLL on PPCA
class PPCA:
    """z ~ N(0, I_d), x|z ~ N(Wz + b, s² I_P) with orthogonal columns of W, so that the exact
    posterior N(Σ Wᵀ(x − b)/s², Σ), Σ = (I + WᵀW/s²)⁻¹, is diagonal; log p(x) = log N(x; b, WWᵀ + s²I)."""

    def __init__(self, p: int = 6, scales=(2.0, 0.7), s: float = 0.5, seed: int = 0):
        g = _gen(seed)
        q, _ = torch.linalg.qr(torch.randn(p, len(scales), generator=g, dtype=F64))
        self.w = q * torch.tensor(scales, dtype=F64)  # (P, d), WᵀW = diag(scales²)
        self.b = torch.randn(p, generator=g, dtype=F64)
        self.s = s
        self.post_var = 1.0 / (1.0 + torch.tensor(scales, dtype=F64) ** 2 / s ** 2)  # (d,)

    def sample_x(self, n: int, seed: int) -> torch.Tensor:
        g = _gen(seed)
        z = torch.randn(n, self.w.shape[1], generator=g, dtype=F64)
        return z @ self.w.T + self.b + self.s * torch.randn(n, self.w.shape[0], generator=g, dtype=F64)

    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.w @ self.w.T + self.s ** 2 * torch.eye(self.w.shape[0], dtype=F64)
        return MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return Normal(z @ self.w.T + self.b, self.s).log_prob(x).sum(-1)  # (c, B)

    def encode_exact(self, x: torch.Tensor):
        mean = (x - self.b) @ self.w * self.post_var / self.s ** 2
        return mean, self.post_var.log().expand_as(mean)

    def encode_imperfect(self, x: torch.Tensor):
        mean, logvar = self.encode_exact(x)
        return mean + 0.3, logvar + math.log(2.0)  # shifted mean, variance inflated ×2


def test_iw_nll_exact_posterior_gives_exact_log_px_for_every_k():
    m = PPCA()
    x = m.sample_x(40, seed=1)
    truth = m.log_px(x)
    for k, chunk in ((1, 1), (10, 3), (100, 64), (1000, 128)):
        got = -iw_nll(m.encode_exact, m.log_px_given_z, x, k, chunk, _gen(k))
        assert got.dtype == F64 and got.shape == (40,)
        # Zero-variance importance weights: every sample's weight is exactly p(x). In float64
        # each log weight is a few D-term sums of magnitude ≲ 100 (γ ~ 1e-15 of it), and the
        # log-mean-exp of k equal values adds ≤ γ_k · |log p(x)|: ≲ 1e-11 at k = 1000.
        torch.testing.assert_close(got, truth, rtol=0, atol=1e-10)


def test_iw_nll_imperfect_proposal_increases_with_k_towards_log_px():
    m = PPCA()
    x = m.sample_x(1000, seed=2)
    truth = m.log_px(x).mean().item()
    means = {}
    for k in (1, 10, 100, 1000):
        vals = [-iw_nll(m.encode_imperfect, m.log_px_given_z, x, k, 256, _gen(1000 * k + seed)).mean().item()
                for seed in range(4)]
        means[k] = sum(vals) / len(vals)
    # Burda et al. 2015, Thm 1: E[L_k] is non-decreasing in k and bounded by log p(x).
    assert means[1] < means[10] < means[100] < means[1000]
    slack = 0.005  # MC noise of the mean over 1000 examples × 4 seeds at large k is far below this
    assert all(v <= truth + slack for v in means.values())
    assert truth - means[1000] < 0.01
    assert truth - means[1] > 0.1  # the proposal is really imperfect: the ELBO gap is visible


def test_iw_nll_is_independent_of_chunk_and_reproducible():
    m = PPCA()
    x = m.sample_x(15, seed=3)
    ref = iw_nll(m.encode_imperfect, m.log_px_given_z, x, 300, 300, _gen(7))
    for chunk in (1, 7, 64, 100, 1000):
        got = iw_nll(m.encode_imperfect, m.log_px_given_z, x, 300, chunk, _gen(7))
        # The same draws, streamed in another grouping: the float64 log-sum-exp's order differs,
        # ≤ γ_300 · (|log p| ≲ 30) = 2e-12 each way.
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-10)
    other = iw_nll(m.encode_imperfect, m.log_px_given_z, x, 300, 64, _gen(8))
    assert not torch.allclose(other, ref, rtol=0, atol=1e-10)  # the generator really drives the noise


def test_iw_nll_float32_bernoulli_decoder_is_finite_and_streams():
    # A float32 Bernoulli "decoder" with very negative log-likelihoods: the streamed logsumexp
    # must not underflow, and k need not be a multiple of chunk.
    g = _gen(4)
    wdec = torch.randn(3, 30, generator=g) * 4
    x = (torch.rand(5, 30, generator=g) < 0.5).float()

    def encode(xb):
        return torch.zeros(xb.shape[0], 3), torch.zeros(xb.shape[0], 3)

    def log_px_given_z(xb, z):
        return bernoulli_log_likelihood(z @ wdec, xb)

    nll = iw_nll(encode, log_px_given_z, x, 1000, 33, _gen(5))
    assert torch.isfinite(nll).all() and (nll > 0).all()
    nll_ref = iw_nll(encode, log_px_given_z, x, 1000, 1000, _gen(5))
    # The same z draws in chunks of 33 or 1000: each float32 log p(x|z) is a 30-pixel sum of
    # terms ≤ |z·w| + log 2 (|z| ≤ 6 for these 5,000 standard-normal draws), whose last bits may
    # differ with the matmul's blocking; the float64 log-sum-exp over k is 1-Lipschitz in them.
    mag = (6 * wdec.abs().sum(0) + math.log(2)).sum().item()
    torch.testing.assert_close(nll, nll_ref, rtol=0, atol=2 * sum_bound(30 + 3 + 4, mag, torch.float32))


# ----------------------------------------------------------------------------- active units
def test_active_units_known_dimensions():
    g = _gen(10)
    n = 5000
    mu = torch.randn(n, 40, generator=g) * 0.01  # variance 1e-4: inactive
    active = torch.tensor([0, 3, 5, 11, 20, 33, 39])
    mu[:, active] = torch.randn(n, 7, generator=g)  # variance 1: active
    assert active_units(mu) == 7
    assert active_units(mu, threshold=1e-5) == 40
    assert active_units(mu, threshold=10.0) == 0
    var = active_unit_variances(mu)
    assert var.shape == (40,)
    torch.testing.assert_close(var, mu.double().var(0, correction=1))


def test_active_units_threshold_boundary_and_unbiased_variance():
    # Column [0, 0.25]: unbiased variance exactly 0.03125 (the biased one would be 0.015625).
    mu = torch.tensor([[0.0, 0.0], [0.25, 0.0]])
    assert active_unit_variances(mu)[0].item() == 0.03125
    assert active_units(mu, threshold=0.03125) == 1  # inclusive ≥
    assert active_units(mu, threshold=math.nextafter(0.03125, 1.0)) == 0
    assert active_units(mu, threshold=0.02) == 1  # would be 0 with the biased estimator
    with pytest.raises(ValueError):
        active_units(mu[:1])


def test_mean_kl():
    g = _gen(11)
    mu, logvar = torch.randn(30, 4, generator=g), torch.randn(30, 4, generator=g)
    v = mean_kl(mu, logvar)
    assert isinstance(v, float)
    assert v == pytest.approx(kl_standard_normal(mu, logvar).mean().item())


def test_bernoulli_log_likelihood_forward_only_path_matches_the_differentiable_one():
    """Under no_grad (the IW-NLL) softplus is computed from exp and log; same values."""
    g = _gen(5)
    for dtype in (F64, torch.float32):
        logits = (torch.randn(7, 5, 300, generator=g, dtype=F64) * 8).to(dtype)
        x = (torch.rand(5, 300, generator=g) < 0.4).to(dtype)
        want = bernoulli_log_likelihood(logits.clone().requires_grad_(), x).detach()
        with torch.no_grad():
            got = bernoulli_log_likelihood(logits, x)
        # 300-term sums of |x·l − softplus(l)| ≤ |l| + log 2, softplus two ways (each within a
        # few ulp of its term): γ_{300+4} of the magnitude, each side. Beyond rounding, torch's
        # F.softplus (the autograd path) returns l itself for l > 20 (its threshold), off by
        # log(1 + e^-l) < e^-20 = 2.1e-9 per such pixel: visible in float64 (5e-9 per row here).
        mag = (logits.abs().double() + math.log(2)).sum(-1).max().item()
        threshold = (logits > 20).sum(-1).max().item() * math.exp(-20)
        torch.testing.assert_close(got, want, rtol=0, atol=2 * sum_bound(300 + 4, mag, dtype) + threshold)
    with torch.no_grad():
        big = torch.tensor([[200.0, -200.0]])
        torch.testing.assert_close(bernoulli_log_likelihood(big, torch.tensor([[1.0, 1.0]])), torch.tensor([-200.0]))
        torch.testing.assert_close(bernoulli_log_likelihood(big, torch.tensor([[1.0, 0.0]])), torch.tensor([0.0]))
