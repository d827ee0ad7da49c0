"""Ground truth for the classifier refit (vaeas.refit): on separated posteriors a refit
classifier reaches the Monte Carlo MI (= log N); on identical posteriors, 0."""

import math

import pytest
import torch

from vaeas.config import ModelConfig
from vaeas.estimators import kl_standard_normal, mc_estimates
from vaeas.models import Classifier
from vaeas.refit import marginal_kl_gap, refit

N, D = 64, 4
SMALL = ModelConfig(latent_dim=D, hidden_units=64, classifier_layers=2, activation="tanh")


def _fresh(classes=N):
    torch.manual_seed(0)
    return Classifier(SMALL, classes)


def test_refit_on_separated_posteriors_reaches_the_monte_carlo_mi_log_n():
    gen = torch.Generator().manual_seed(1)
    mu = 3.0 * torch.randn(N, D, generator=gen)
    logvar = torch.full((N, D), -9.0)
    mc = mc_estimates(mu, logvar, torch.Generator().manual_seed(2))
    # Not rounding (≤ 1e-9 here): the posteriors (σ = 0.011, means 3·N(0, I) apart) overlap by
    # less than 1e-3 nats of MI; the refit tolerances below (0.1) are how close 400 epochs of
    # Adam get to the Bayes-optimal classifier, an optimisation margin, not a precision claim.
    assert mc["mi"] == pytest.approx(math.log(N), abs=1e-3)
    res = refit(None, _fresh(), mu, logvar, torch.arange(N), N, from_trained=False,
                max_epochs=400, lr=1e-2, batch=64, seed=3)
    assert res.mi == pytest.approx(mc["mi"], abs=0.1)
    # MD = mean KL − MI (Appendix 7.1), with the analytic KL the softmax MD also uses
    md_true = kl_standard_normal(mu, logvar).mean().item() - math.log(N)
    assert res.md == pytest.approx(md_true, abs=0.1)
    assert res.sc < 0.1


def test_shared_labels_on_separated_posteriors_need_log_n_in_eq_10():
    """D5's closed form, checked: V labels shared by N separated posteriors, a refit (≈ Bayes-
    optimal) classifier: eq. 10 with log N (``md_count`` = N) reaches the true MD = mean KL − log N;
    with log V it over-reads by log(N / V)."""
    V = 16
    gen = torch.Generator().manual_seed(1)
    mu = 3.0 * torch.randn(N, D, generator=gen)
    logvar = torch.full((N, D), -9.0)
    md_true = kl_standard_normal(mu, logvar).mean().item() - math.log(N)
    kw = dict(from_trained=False, max_epochs=300, lr=1e-2, batch=64, seed=3)
    with_n = refit(None, _fresh(V), mu, logvar, torch.arange(N) % V, V, md_count=N, **kw)
    with_v = refit(None, _fresh(V), mu, logvar, torch.arange(N) % V, V, **kw)
    assert with_n.mi == pytest.approx(math.log(V), abs=0.1)          # MI is capped at log V (§3.3)
    assert with_n.md == pytest.approx(md_true, abs=0.1)
    # Both refits are the same float32 computation (same seed, same classifier) but for eq. 10's
    # constant: they differ by it up to a few float32 roundings of |MD| ≲ 30 (~1e-5).
    assert with_v.md - with_n.md == pytest.approx(math.log(N / V), abs=1e-4)


def test_refit_on_identical_posteriors_gives_zero_mi():
    mu, logvar = torch.zeros(N, D), torch.zeros(N, D)
    res = refit(None, _fresh(), mu, logvar, torch.arange(N), N, from_trained=False,
                max_epochs=60, lr=1e-3, batch=64, seed=3)
    assert abs(res.mi) < 0.15
    assert res.sc >= math.log(N) - 0.05


def test_refit_from_the_trained_classifier_leaves_the_trained_one_untouched():
    trained = _fresh()
    before = [p.clone() for p in trained.parameters()]
    mu = 3.0 * torch.randn(N, D, generator=torch.Generator().manual_seed(1))
    refit(trained, _fresh(), mu, torch.full((N, D), -9.0), torch.arange(N), N, from_trained=True,
          max_epochs=5, lr=1e-2, batch=64, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(before, trained.parameters()))


def test_refit_is_repeatable_for_a_seed():
    mu = torch.randn(N, D, generator=torch.Generator().manual_seed(1))
    logvar = torch.full((N, D), -2.0)
    kw = dict(from_trained=False, max_epochs=5, lr=1e-2, batch=32, seed=3)
    assert refit(None, _fresh(), mu, logvar, torch.arange(N), N, **kw) == \
        refit(None, _fresh(), mu, logvar, torch.arange(N), N, **kw)


def test_marginal_kl_gap_is_log_n_over_v():
    assert marginal_kl_gap(55000, 55000) == 0.0
    assert marginal_kl_gap(55000, 1000) == pytest.approx(math.log(55))
