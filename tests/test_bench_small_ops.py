"""bench.small_ops: the hand-fused levers compute what the step computes, and the swap is undone."""

import math

import pytest
import torch

import vaeas.metrics as metrics
from bench import small_ops
from bench import step as bench_step


def test_fused_likelihood_matches_eager_value_and_the_closed_form_gradient():
    gen = torch.Generator().manual_seed(0)
    logits = (4 * torch.randn(6, 784, generator=gen, dtype=torch.float64)).requires_grad_()
    x = torch.bernoulli(torch.rand(6, 784, generator=gen, dtype=torch.float64), generator=gen)
    weights = torch.randn(6, generator=gen, dtype=torch.float64)
    fused = small_ops.fused_bernoulli_log_likelihood(logits, x)
    (g_fused,) = torch.autograd.grad((fused * weights).sum(), logits)
    eager = metrics.bernoulli_log_likelihood(logits, x)
    (g_eager,) = torch.autograd.grad((eager * weights).sum(), logits)
    # float64 (u = 1.1e-16) on any CPU: each value sums 784 terms of |x·l − softplus(l)| ≤ ~20, so the
    # two orders of evaluation differ by at most ~784 · u · 784 · 20 ≈ 1.4e-9 absolute, i.e. ≤ rtol 1e-12
    # of sums of magnitude ≥ 1e3 plus atol 1e-10; the gradients are 2–3 elementwise ops on values
    # ≤ |weight| ≈ 3, a few ulps (≤ 1e-15 absolute), inside rtol 1e-12 + atol 1e-14.
    torch.testing.assert_close(fused, eager, rtol=1e-12, atol=1e-10)
    # d/dl [x l − softplus(l)] = x − σ(l), scaled by each row's upstream weight.
    closed = (x - torch.sigmoid(logits.detach())) * weights[:, None]
    torch.testing.assert_close(g_fused, closed, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_eager, closed, rtol=1e-12, atol=1e-14)


def test_uniform_binarize_is_bernoulli_with_the_pixel_as_probability():
    gen = torch.Generator().manual_seed(0)
    edge = small_ops.uniform_binarize(torch.tensor([0.0, 1.0] * 1000), gen)
    assert edge.tolist() == [0.0, 1.0] * 1000
    n, p = 1_000_000, 0.3
    draws = small_ops.uniform_binarize(torch.full((n,), p), gen)
    assert set(draws.unique().tolist()) == {0.0, 1.0}
    # Binomial mean: 6 standard deviations of the sample mean.
    assert abs(draws.mean().item() - p) < 6 * math.sqrt(p * (1 - p) / n)


def test_levers_restore_the_step_functions_even_on_error():
    before = bench_step.binarize, metrics.bernoulli_log_likelihood
    with pytest.raises(RuntimeError, match="inside"):
        with small_ops.levers(True, True):
            assert bench_step.binarize is small_ops.uniform_binarize
            assert metrics.bernoulli_log_likelihood is small_ops.fused_bernoulli_log_likelihood
            raise RuntimeError("inside")
    assert (bench_step.binarize, metrics.bernoulli_log_likelihood) == before


def test_check_likelihood_passes_on_the_real_step():
    assert small_ops.check_likelihood(50) < 1e-4
